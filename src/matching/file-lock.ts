import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { PlinthError } from '../core/errors.js';

/**
 * The lock eDeploy's server took around every read-modify-write of its configuration
 * directory: a lock file created with O_CREAT|O_EXCL, so eDeploy and Plinth exclude each
 * other when pointed at the same file. eDeploy waited forever; here the wait has a timeout
 * (decision 9). A lock left behind by a crashed process is not broken automatically: nothing
 * tells a dead holder from a slow one, so the error names the file to remove.
 */

export interface LockOptions {
  /** How long to wait for the lock; default 30 s. */
  timeoutMs?: number;
  /** How often to retry while waiting; default 100 ms (eDeploy: 1 s). */
  pollMs?: number;
}

export interface FileLock {
  readonly path: string;
  release(): Promise<void>;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export async function acquireLock(path: string, options: LockOptions = {}): Promise<FileLock> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const pollMs = options.pollMs ?? 100;
  const started = performance.now();
  for (;;) {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const waited = performance.now() - started;
      if (waited >= timeoutMs) {
        throw new PlinthError('timeout', `could not lock ${path} within ${timeoutMs} ms; if no eDeploy or Plinth process is running, remove that file`, {
          details: { lock: path, timeoutMs },
        });
      }
      await sleep(Math.min(pollMs, Math.max(1, timeoutMs - waited)));
      continue;
    }
    // The holder's pid helps whoever finds a stale lock.
    await handle.writeFile(`${process.pid}\n`).catch(() => undefined);
    let released = false;
    return {
      path,
      async release() {
        if (released) return;
        released = true;
        await handle.close().catch(() => undefined);
        await unlink(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      },
    };
  }
}

/** Runs `fn` holding the lock, releasing it however `fn` ends. */
export async function withLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
