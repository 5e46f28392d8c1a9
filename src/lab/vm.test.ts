import { describe, expect, it } from 'vitest';
import { qemuArgs } from './vm.js';

describe('QEMU command line', () => {
  it("a NIC on a tap joins that tap's bridge instead of QEMU's user network", () => {
    const args = qemuArgs({ name: 'vm', nics: [{ mac: '52:54:00:00:00:01', tap: 'tap0' }, { mac: '52:54:00:00:00:02', bootUrl: 'http://10.0.2.2:7708/boot.ipxe' }] }, { dir: '/tmp/x' });
    const netdevs = args.filter((_, i) => args[i - 1] === '-netdev');
    expect(netdevs).toEqual(['tap,id=n0,ifname=tap0,script=no,downscript=no', 'user,id=n1,bootfile=http://10.0.2.2:7708/boot.ipxe']);
  });

  it("a NIC with an empty romfile has no iPXE ROM; without one it keeps QEMU's", () => {
    const args = qemuArgs({ name: 'vm', firmware: 'uefi', nics: [{ mac: '52:54:00:00:00:01', tap: 'tap0', romfile: '' }, { mac: '52:54:00:00:00:02', tap: 'tap1' }] }, { dir: '/tmp/x' });
    const devices = args.filter((_, i) => args[i - 1] === '-device');
    expect(devices).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,romfile=,bootindex=1', 'virtio-net-pci,netdev=n1,mac=52:54:00:00:00:02,bootindex=2']);
  });

  it('a serial console with input is a Unix socket whose output is still logged; without it, the log alone', () => {
    const serialOf = (args: string[]) => args.filter((_, i) => args[i - 1] === '-serial' || args[i - 1] === '-chardev');
    expect(serialOf(qemuArgs({ name: 'vm', serialInput: true }, { dir: '/tmp/x' }))).toEqual(['socket,id=serial0,path=/tmp/x/vm.serial.sock,server=on,wait=off,logfile=/tmp/x/vm.serial.log', 'chardev:serial0']);
    expect(serialOf(qemuArgs({ name: 'vm' }, { dir: '/tmp/x' }))).toEqual(['file:/tmp/x/vm.serial.log']);
  });
});
