import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { runCommand, toolEnv, TOOL_PATH } from './run-command.js';

/** A program the build runs on the host, and the Debian package that provides it. */
export interface HostTool {
  command: string;
  debianPackage: string;
}

export function findOnPath(command: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...TOOL_PATH.split(':')].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

/**
 * Makes sure every tool is present. Missing packages are installed with apt-get when
 * running as root (the build needs root anyway); otherwise the build stops with one line
 * naming the packages.
 */
export async function ensureHostTools(
  tools: HostTool[],
  options: { isRoot: boolean; log: (line: string) => void; signal?: AbortSignal },
): Promise<void> {
  const missingPackages = (): string[] => [
    ...new Set(tools.filter((t) => findOnPath(t.command) === null).map((t) => t.debianPackage)),
  ];
  let missing = missingPackages();
  if (missing.length === 0) return;
  const list = missing.join(' ');
  if (!options.isRoot) {
    throw new PlinthError('unavailable', `the installer build needs the Debian package(s) ${list} (apt-get install -y ${list})`, {
      details: { missingPackages: missing },
    });
  }
  options.log(`installing missing host package(s): ${list}`);
  const install = () =>
    runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
      env: toolEnv(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  try {
    await install();
  } catch {
    // NOTE: a fresh host (or container) often has no package lists yet; refresh once and retry.
    await runCommand('apt-get', ['update'], { env: toolEnv(), ...(options.signal ? { signal: options.signal } : {}) });
    await install();
  }
  missing = missingPackages();
  if (missing.length > 0) {
    throw new PlinthError('unavailable', `the installer build needs the Debian package(s) ${missing.join(' ')}, and installing them failed`, {
      details: { missingPackages: missing },
    });
  }
}
