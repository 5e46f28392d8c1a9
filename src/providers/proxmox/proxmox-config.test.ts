import { describe, expect, it } from 'vitest';
import { bootOrder, bootValueFor, cdDrive, firmwareOf, firstBootDevice, netMac, smbiosUuid, vmMacs } from './proxmox-config.js';

// Values in the form `GET /nodes/{node}/qemu/{vmid}/config` returns them.
const CONFIG = {
  name: 'web-01',
  smbios1: 'uuid=6F9C8A4E-2B1D-4E3F-9A7C-1D2E3F4A5B6C,base64=1,manufacturer=UGxpbnRo',
  net0: 'virtio=BC:24:11:2F:3A:01,bridge=vmbr0,firewall=1',
  net1: 'e1000=bc:24:11:2f:3a:02,bridge=vmbr1,tag=20',
  scsi0: 'local-lvm:vm-100-disk-0,iothread=1,size=32G',
  ide2: 'local:iso/debian.iso,media=cdrom,size=600M',
  boot: 'order=scsi0;ide2;net0',
  bios: 'ovmf',
  digest: 'abc',
};

describe('Proxmox VM configuration', () => {
  it('reads MACs from netN in order, and the SMBIOS UUID', () => {
    expect(vmMacs(CONFIG)).toEqual(['bc:24:11:2f:3a:01', 'bc:24:11:2f:3a:02']);
    expect(netMac('macaddr=BC:24:11:00:00:09,bridge=vmbr0')).toBe('bc:24:11:00:00:09');
    expect(smbiosUuid(CONFIG)).toBe('6f9c8a4e-2b1d-4e3f-9a7c-1d2e3f4a5b6c');
  });

  it('reads both boot syntaxes', () => {
    expect(bootOrder(CONFIG)).toEqual(['scsi0', 'ide2', 'net0']);
    expect(firstBootDevice(CONFIG)).toBe('disk');
    expect(bootOrder({ ...CONFIG, boot: 'dcn', bootdisk: 'scsi0' })).toEqual(['ide2', 'scsi0', 'net0', 'net1']);
  });

  it('puts the wanted device first and keeps the previous order behind it', () => {
    expect(bootValueFor(CONFIG, 'pxe')).toBe('order=net0;scsi0;ide2');
    expect(bootValueFor(CONFIG, 'cd')).toBe('order=ide2;scsi0;net0');
    expect(bootValueFor({ net0: CONFIG.net0 }, 'cd')).toBeUndefined();
  });

  it('knows the firmware and the CD drive', () => {
    expect(firmwareOf(CONFIG)).toBe('uefi');
    expect(firmwareOf({})).toBe('legacy');
    expect(cdDrive(CONFIG)).toEqual({ key: 'ide2', volume: 'local:iso/debian.iso' });
    expect(cdDrive({ ide2: 'none,media=cdrom' })).toEqual({ key: 'ide2', volume: 'none' });
  });
});
