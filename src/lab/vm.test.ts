import { describe, expect, it } from 'vitest';
import { qemuArgs } from './vm.js';

describe('QEMU command line', () => {
  it("a NIC on a tap joins that tap's bridge instead of QEMU's user network", () => {
    const args = qemuArgs({ name: 'vm', nics: [{ mac: '52:54:00:00:00:01', tap: 'tap0' }, { mac: '52:54:00:00:00:02', bootUrl: 'http://10.0.2.2:7708/boot.ipxe' }] }, { dir: '/tmp/x' });
    const netdevs = args.filter((_, i) => args[i - 1] === '-netdev');
    expect(netdevs).toEqual(['tap,id=n0,ifname=tap0,script=no,downscript=no', 'user,id=n1,bootfile=http://10.0.2.2:7708/boot.ipxe']);
  });
});
