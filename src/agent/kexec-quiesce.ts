import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Before `kexec --exec`: detach every virtio device from its driver, which resets the device,
 * so none of them writes into memory the new kernel now owns. Linux 6.1's virtio drivers (the
 * installer's kernel) do not reset their devices when the kernel shuts down for kexec — upstream
 * added that later ("virtio: break and reset virtio devices on device_shutdown()") — and a
 * virtio NIC still receiving, or a disk finishing a request, writes into the pages kexec has
 * put the new kernel in: purgatory finds their sha256 changed and loops forever (seen on a QEMU
 * VM: the last line "kexec_core: Starting new kernel"). Real hardware's drivers stop their
 * devices at shutdown; there is nothing under /sys/bus/virtio there. Returns the devices detached.
 */
export function detachVirtioDevices(sysfs = '/sys'): string[] {
  const bus = join(sysfs, 'bus/virtio/devices');
  const detached: string[] = [];
  let devices: string[];
  try {
    devices = readdirSync(bus).sort();
  } catch {
    return detached;
  }
  for (const name of devices) {
    const unbind = join(bus, name, 'driver/unbind');
    if (!existsSync(unbind)) continue;
    try {
      writeFileSync(unbind, name);
      detached.push(name);
    } catch {
      // A device that will not let go is left as it is: kexec may still work.
    }
  }
  return detached;
}
