import { describe, expect, it } from 'vitest';
import { parseCmdline, parseIsoCmdline } from './cmdline.js';
import { identityQuery } from './ticket.js';

describe('an installer booted from the ISO', () => {
  it('knows the controller from plinth.url and plinth.boot=vmedia, and has no run of its own', () => {
    const line = 'BOOT_IMAGE=/plinth/vmlinuz plinth.url=http://10.0.2.2:8080/ plinth.boot=vmedia console=ttyS0';
    expect(parseCmdline(line)).toBeNull();
    expect(parseIsoCmdline(line)).toEqual({ url: 'http://10.0.2.2:8080', debug: false });
    // A network boot's command line carries its run: no ticket is asked for.
    expect(parseIsoCmdline('plinth.url=http://c plinth.run=r1 plinth.token=t plinth.boot=vmedia')).toBeNull();
    expect(parseIsoCmdline('plinth.url=http://c console=ttyS0')).toBeNull();
  });

  it('names itself by SMBIOS and the MACs of its real NICs, as iPXE would, leaving out placeholders', () => {
    const files: Record<string, string> = {
      '/sys/class/dmi/id/product_uuid': '1B1B1B1B-0000-4000-8000-000000000009\n',
      '/sys/class/dmi/id/product_serial': 'Not Specified\n',
      '/sys/class/dmi/id/chassis_asset_tag': 'ASSET-7\n',
      '/sys/class/dmi/id/sys_vendor': 'QEMU\n',
      '/sys/class/net/ens3/address': '52:54:00:AA:00:01\n',
      '/sys/class/net/ens3/device/uevent': 'DRIVER=virtio_net\n',
      '/sys/class/net/lo/address': '00:00:00:00:00:00\n',
      '/sys/class/net/br0/address': '52:54:00:aa:00:99\n',
    };
    const q = identityQuery((p) => files[p], () => ['lo', 'ens3', 'br0']);
    expect(Object.fromEntries(q)).toEqual({ uuid: '1b1b1b1b-0000-4000-8000-000000000009', asset: 'ASSET-7', manufacturer: 'QEMU', mac0: '52:54:00:aa:00:01', platform: 'vmedia' });
  });
});
