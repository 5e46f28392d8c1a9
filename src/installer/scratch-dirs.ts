import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { runCommand } from './run-command.js';

/**
 * Scratch directories of the build. They live under the data directory so that finished
 * artifacts reach their place by rename (same filesystem) instead of by copy.
 */
export function makeScratchDir(parent: string, prefix: string): string {
  return mkdtempSync(join(parent, `${prefix}-`));
}

/** Mount points at or below `dir`, deepest first. */
export function mountsBelow(dir: string): string[] {
  const prefix = resolve(dir);
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    // mountinfo escapes spaces and other specials as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p === prefix || p.startsWith(`${prefix}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Removes a scratch directory. debootstrap mounts /proc and /sys inside its target and a
 * killed run can leave them mounted: those are unmounted first, because a recursive
 * delete must never walk into the host's /proc, /sys or /dev.
 */
export async function removeScratchDir(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const point of mountsBelow(dir)) {
    await runCommand('umount', ['--lazy', point]).catch(() => undefined);
  }
  const left = mountsBelow(dir);
  if (left.length > 0) {
    throw new PlinthError('internal', `not removing ${dir}: still mounted: ${left.join(', ')}`);
  }
  rmSync(dir, { recursive: true, force: true });
}
