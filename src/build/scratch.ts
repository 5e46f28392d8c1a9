/**
 * Scratch (work) directories of a build, and the mounts a build makes inside them. They live
 * next to the build's output so that finished artifacts reach their place by rename (same
 * file system) instead of by copy. A recursive delete must never walk into a mount that is
 * still there (a bind-mounted package cache, or the host's /proc and /sys that debootstrap
 * mounts into its target): they are unmounted first, and a directory that stays mounted is
 * left alone.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { runTool } from './process.js';

type Log = (line: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Decodes the octal escapes (`\040` for a space) of /proc/self/mountinfo paths. */
export const unescapeMountPath = (text: string): string => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Mount points listed in a mountinfo text (field 5 of each line). */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined && field !== '')
    .map(unescapeMountPath);
}

export const isUnder = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Mount points at or below `dir`, deepest first (the order they must be unmounted in). */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const base = resolve(dir);
  return [...new Set(parseMountPoints(mountinfo))]
    .filter((point) => isUnder(point, base))
    .sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}

/**
 * Unmounts one mount point. A process that has not quite exited yet can keep it busy for a
 * moment, so it retries before falling back to a lazy unmount (which detaches it from the
 * tree at once and frees it when the last user goes).
 */
export async function unmount(point: string, log: Log): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (!mountsUnder(point).includes(resolve(point))) return;
    try {
      await runTool('umount', [point], { onLine: log });
      return;
    } catch {
      if (attempt >= 5) {
        log(`umount ${point} still failing; detaching it lazily`);
        await runTool('umount', ['--lazy', point], { onLine: log });
        return;
      }
      await sleep(attempt * 300);
    }
  }
}

export async function unmountAllUnder(dir: string, log: Log): Promise<void> {
  for (const point of mountsUnder(dir)) await unmount(point, log);
}

/** A new, empty directory `parent/prefix-XXXXXX`. */
export function makeScratchDir(parent: string, prefix: string): string {
  return mkdtempSync(join(parent, `${prefix}-`));
}

/**
 * Removes a scratch directory after unmounting whatever is mounted below it; refuses (and
 * says what) when something stays mounted. A missing directory is fine.
 */
export async function removeScratchDir(dir: string, log: Log = () => undefined): Promise<void> {
  if (!existsSync(dir)) return;
  await unmountAllUnder(dir, log);
  const left = mountsUnder(dir);
  if (left.length > 0) throw new PlinthError('internal', `not removing ${dir}: still mounted below it: ${left.join(', ')}`, { details: { mounts: left } });
  rmSync(dir, { recursive: true, force: true });
}
