import { describe, expect, it } from 'vitest';
import { isInstallableDisk, parseLsblk } from './lsblk.js';
import { capture } from './test-fixtures.js';

describe('parseLsblk', () => {
  it('reads the QEMU VM: SCSI disk, CD-ROM and two virtio disks, inquiry padding trimmed', () => {
    const devices = parseLsblk(capture('qemu-bios', 'lsblk.json'));
    expect(devices.map((d) => d.name)).toEqual(['sda', 'sr0', 'vda', 'vdb']);
    expect(devices[0]).toEqual({
      name: 'sda',
      sizeBytes: 322122547200,
      model: 'ST300MM0008',
      vendor: 'SEAGATE',
      revision: '2.5+',
      serial: null,
      wwn: null,
      rotational: true,
      type: 'disk',
      transport: null,
      removable: false,
      readOnly: false,
    });
    expect(devices[2]).toMatchObject({ name: 'vda', sizeBytes: 8589934592, model: null, vendor: '0x1af4' });
    expect(devices[3]).toMatchObject({ name: 'vdb', sizeBytes: 21474836480 });
  });

  it('keeps disks, drops the CD-ROM (type rom, read-only)', () => {
    const devices = parseLsblk(capture('qemu-bios', 'lsblk.json'));
    expect(devices.filter(isInstallableDisk).map((d) => d.name)).toEqual(['sda', 'vda', 'vdb']);
  });

  it('keeps a removable USB disk and says so', () => {
    const devices = parseLsblk(capture('qemu-uefi', 'lsblk.json'));
    const usb = devices.find((d) => d.name === 'sdb')!;
    expect(usb).toMatchObject({ removable: true, transport: 'usb', sizeBytes: 2147483648, model: 'QEMU HARDDISK' });
    expect(devices.filter(isInstallableDisk).map((d) => d.name)).toEqual(['sda', 'sdb', 'vda', 'vdb']);
  });

  it('drops loop devices and an unconfigured zram that calls itself a disk (host)', () => {
    const devices = parseLsblk(capture('host', 'lsblk.json'));
    expect(devices.find((d) => d.name === 'zram0')).toMatchObject({ type: 'disk', sizeBytes: 0 });
    expect(devices.find((d) => d.name === 'loop0')).toMatchObject({ type: 'loop' });
    expect(devices.filter(isInstallableDisk).map((d) => d.name)).toEqual(['vda']);
  });

  it('drops a configured zram and read-only disks even with a size', () => {
    const json = JSON.stringify({
      blockdevices: [
        { name: 'zram0', size: 4294967296, type: 'disk', rm: false, ro: false, rota: false },
        { name: 'sdc', size: 8004304896, type: 'disk', rm: true, ro: true, rota: true },
        { name: 'nvme0n1', size: 960197124096, type: 'disk', rm: false, ro: false, rota: false },
      ],
    });
    expect(parseLsblk(json).filter(isInstallableDisk).map((d) => d.name)).toEqual(['nvme0n1']);
  });

  it('reads old util-linux output, where every value is a string', () => {
    const json = '{"blockdevices": [{"name": "sda", "size": "500107862016", "model": "Samsung SSD 850 ", "serial": "S21NX0AG", "wwn": "0x5002538d40000000", "rota": "0", "type": "disk", "tran": "sata", "rm": "0", "ro": "0"}]}';
    expect(parseLsblk(json)[0]).toMatchObject({ sizeBytes: 500107862016, model: 'Samsung SSD 850', rotational: false, removable: false, readOnly: false, transport: 'sata', wwn: '0x5002538d40000000' });
  });

  it('rejects output that is not lsblk JSON', () => {
    expect(() => parseLsblk('NAME SIZE\nsda 500G')).toThrow();
    expect(() => parseLsblk('{"devices": []}')).toThrow(/blockdevices/);
  });
});
