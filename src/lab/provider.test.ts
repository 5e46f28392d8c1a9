import { describe, expect, it } from 'vitest';
import { forwardOf } from './provider.js';

describe('forwardOf', () => {
  it("finds the host port of QEMU's user network that leads to a guest port", () => {
    const spec = { name: 'v', nics: [{ mac: '52:54:00:00:00:01', hostForwards: [{ hostPort: 2080, guestPort: 80 }, { hostPort: 2022, guestPort: 22 }] }] };
    expect(forwardOf(spec, 22)).toEqual({ address: '127.0.0.1', port: 2022 });
    expect(forwardOf(spec, 443)).toBeNull();
  });
  it('has none for a NIC on a tap interface, nor for a VM without NICs', () => {
    expect(forwardOf({ name: 'v', nics: [{ mac: '52:54:00:00:00:01', tap: 't0', hostForwards: [{ hostPort: 2022, guestPort: 22 }] }] }, 22)).toBeNull();
    expect(forwardOf({ name: 'v' }, 22)).toBeNull();
  });
});
