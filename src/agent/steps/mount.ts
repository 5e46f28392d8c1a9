import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepError } from './errors.js';
import type { Exec } from './exec.js';

/**
 * Mounts a filesystem on a fresh directory for the duration of `use`, then unmounts it and
 * removes the directory, whatever `use` did. An unmount that keeps failing is an error: a
 * filesystem left mounted would be written to after the reboot's sync, or not at all.
 */
export async function withMounted<T>(partition: string, fsType: string, exec: Exec, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'plinth-mnt-'));
  try {
    await exec('mount', ['-t', fsType, partition, dir]);
  } catch (e) {
    await fsp.rmdir(dir).catch(() => undefined);
    throw new StepError('disk', `cannot mount ${partition} (${fsType}): ${(e as Error).message}`, { partition });
  }
  let result: T;
  try {
    result = await use(dir);
  } catch (e) {
    await unmount(dir, exec).catch(() => undefined);
    throw e;
  }
  await unmount(dir, exec);
  return result;
}

async function unmount(dir: string, exec: Exec): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await exec('umount', [dir]);
      await fsp.rmdir(dir).catch(() => undefined);
      return;
    } catch (e) {
      last = e;
      // NOTE: umount fails with "target is busy" for a moment after files were closed when
      // something (udev's blkid, a scanner) still holds the mount; it clears by itself.
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
  throw new StepError('disk', `cannot unmount ${dir}: ${(last as Error).message}`, { dir });
}
