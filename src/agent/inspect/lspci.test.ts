import { describe, expect, it } from 'vitest';
import { parseLspci } from './lspci.js';
import { capture } from './test-fixtures.js';

describe('parseLspci', () => {
  it('reads every function of the QEMU VM with its names', () => {
    const devices = parseLspci(capture('qemu-bios', 'lspci.txt'));
    expect(devices).toHaveLength(10);
    expect(devices.find((d) => d.slot === '0000:00:07.0')).toEqual({
      slot: '0000:00:07.0',
      className: 'Ethernet controller',
      vendor: 'Intel Corporation',
      device: '82540EM Gigabit Ethernet Controller',
    });
    expect(devices.find((d) => d.slot === '0000:00:06.0')).toMatchObject({ vendor: 'Red Hat, Inc.', device: 'Virtio network device' });
  });

  it('reads the host', () => {
    expect(parseLspci(capture('host', 'lspci.txt')).find((d) => d.slot === '0000:00:03.0')).toMatchObject({ className: 'Ethernet controller', device: 'Virtio 1.0 network device' });
  });
});
