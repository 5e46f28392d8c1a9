/**
 * One build at a time per cache: two builds would share the package caches and swap their
 * outputs under each other. The lock is a file created exclusively that holds its owner's
 * pid and boot id, so that a lock left by a build that died (SIGKILL, power loss) is taken
 * over instead of blocking every later build.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PlinthError } from '../core/errors.js';

export const currentBootId = (): string => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
};

/** The owner record of a lock or work directory: which process holds it, since which boot. */
export const ownerRecord = (): string => `${process.pid} ${currentBootId()}\n`;

/** Whether the process an owner record names is still alive (a record from an earlier boot never is). */
export function ownerAlive(record: string): boolean {
  const [pidText, bootId] = record.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || bootId !== currentBootId()) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const readOrEmpty = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Takes the lock at `path` for `job` (e.g. 'installer build'), or fails with a conflict
 * naming the process that holds it. Returns the release, which removes the file only while
 * it is still this process's record.
 */
export function acquireBuildLock(path: string, job: string): () => void {
  const record = ownerRecord();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, record, { flag: 'wx', mode: 0o644 });
      return () => {
        if (readOrEmpty(path) === record) rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readOrEmpty(path);
      if (ownerAlive(holder)) {
        const pid = Number(holder.split(/\s/)[0]);
        throw new PlinthError('conflict', `another ${job} is running (process ${pid}, lock ${path})`, { details: { pid, lock: path } });
      }
      // Stale: its process is gone. Take it over, unless another build did so meanwhile.
      if (readOrEmpty(path) === holder) rmSync(path, { force: true });
    }
  }
  throw new PlinthError('conflict', `could not take the ${job} lock ${path}`, { details: { lock: path } });
}
