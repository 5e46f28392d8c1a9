/**
 * The host programs (and files) a build needs, each with the Debian package that provides
 * it, so that a host lacking one gets either the package installed or one line naming it.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { cleanEnvironment, SBIN_PATH } from './environment.js';
import { runTool } from './process.js';

export interface HostTool {
  /** A program looked up in PATH (plus the sbin directories), or an absolute file path. */
  need: string;
  debianPackage: string;
}

/** The program's path, or null; absolute names are checked as files. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | null {
  if (name.startsWith('/')) return existsSync(name) ? name : null;
  for (const dir of [...path.split(delimiter), ...SBIN_PATH.split(':')].filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

export const missingTools = (tools: readonly HostTool[], find = findProgram): HostTool[] => tools.filter((t) => find(t.need) === null);

export const packagesFor = (missing: readonly HostTool[]): string[] => [...new Set(missing.map((t) => t.debianPackage))].sort();

/** The one-line error for a host that lacks tools and may not install them. */
export function missingToolsMessage(missing: readonly HostTool[]): string {
  const what = missing.map((t) => `${t.need} (package ${t.debianPackage})`).join(', ');
  return `missing host tools: ${what}; install with: apt-get install ${packagesFor(missing).join(' ')}`;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Makes sure the host has every tool: installs the missing Debian packages with apt-get when
 * running as root (builds need root anyway), and fails with one line naming them otherwise.
 */
export async function ensureHostTools(
  tools: readonly HostTool[],
  options: {
    log: (line: string) => void;
    /** Receives what apt-get prints; default: dropped (a failure still quotes its end). */
    onToolLine?: (line: string) => void;
    signal?: AbortSignal | undefined;
  },
): Promise<void> {
  const missing = missingTools(tools);
  if (missing.length === 0) return;
  if (!isRoot() || findProgram('apt-get') === null) {
    throw new PlinthError('unavailable', missingToolsMessage(missing), { details: { missingPackages: packagesFor(missing) } });
  }
  const packages = packagesFor(missing);
  options.log(`installing host packages: ${packages.join(' ')}`);
  const apt = (args: string[]) =>
    runTool('apt-get', [...args, '-q', '-o', 'DPkg::Lock::Timeout=300'], {
      job: 'host package installation',
      signal: options.signal,
      ...(options.onToolLine ? { onLine: options.onToolLine } : {}),
      env: cleanEnvironment({ DEBIAN_FRONTEND: 'noninteractive' }),
    });
  const install = () => apt(['install', '-y', '--no-install-recommends', ...packages]);
  try {
    await install();
  } catch {
    // NOTE: a fresh host (or container) often has no package lists yet; refresh them once and retry.
    await apt(['update']);
    await install();
  }
  const stillMissing = missingTools(tools);
  if (stillMissing.length > 0) {
    throw new PlinthError('unavailable', missingToolsMessage(stillMissing), { details: { missingPackages: packagesFor(stillMissing) } });
  }
}
