import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detachVirtioDevices } from './kexec-quiesce.js';

describe('detachVirtioDevices', () => {
  it("writes each bound virtio device's name to its driver's unbind file, and skips unbound ones", () => {
    const sys = mkdtempSync(join(tmpdir(), 'plinth-sysfs-'));
    const devices = join(sys, 'bus/virtio/devices');
    for (const [dev, driver] of [['virtio0', 'virtio_net'], ['virtio1', 'virtio_blk'], ['virtio2', null]] as const) {
      const real = join(sys, 'devices/pci0000:00', dev);
      mkdirSync(real, { recursive: true });
      mkdirSync(devices, { recursive: true });
      symlinkSync(real, join(devices, dev));
      if (driver) {
        const drv = join(sys, 'bus/virtio/drivers', driver);
        mkdirSync(drv, { recursive: true });
        writeFileSync(join(drv, 'unbind'), '');
        symlinkSync(drv, join(real, 'driver'));
      }
    }
    expect(detachVirtioDevices(sys)).toEqual(['virtio0', 'virtio1']);
    expect(readFileSync(join(sys, 'bus/virtio/drivers/virtio_net/unbind'), 'utf8')).toBe('virtio0');
    expect(readFileSync(join(sys, 'bus/virtio/drivers/virtio_blk/unbind'), 'utf8')).toBe('virtio1');
  });

  it('does nothing on a machine without a virtio bus', () => {
    expect(detachVirtioDevices(mkdtempSync(join(tmpdir(), 'plinth-sysfs-')))).toEqual([]);
  });
});
