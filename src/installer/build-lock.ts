import { openSync, closeSync, writeSync, readFileSync, unlinkSync } from 'node:fs';
import { PlinthError } from '../core/errors.js';

/**
 * One installer build at a time per data directory: two builds would share the .deb cache
 * and swap the output directory under each other. The lock file holds the builder's pid so
 * that a lock left by a crashed build is taken over instead of blocking forever.
 */
export function acquireBuildLock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // Already gone.
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
        throw new PlinthError('conflict', `another installer build is running (pid ${holder}, lock ${path})`, {
          details: { pid: holder, lock: path },
        });
      }
      // Stale: its process is gone. Take it over.
      unlinkSync(path);
    }
  }
  throw new PlinthError('conflict', `could not take the installer build lock ${path}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
