/**
 * Test peers run real Debian software (OpenIPMI's ipmi_sim, libvirt, govmomi's simulator).
 * A peer installs what it needs with apt-get when it is missing, so a fresh CI machine
 * gets the same peers as a developer's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when `command` is found on PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export function hasPackageFile(path: string): boolean {
  return existsSync(path);
}

/**
 * Installs Debian packages unless `present()` says they are already there. Throws with the
 * apt-get output when installation is impossible (no root, no network), so the test that
 * needed the peer fails with the reason.
 */
export function ensureDebianPackages(packages: string[], present: () => boolean): void {
  if (present()) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, stdio: 'pipe', timeout: 600_000 });
  } catch {
    execFileSync('apt-get', ['update'], { env, stdio: 'pipe', timeout: 600_000 });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, stdio: 'pipe', timeout: 600_000 });
  }
  if (!present()) throw new Error(`installed ${packages.join(', ')} but the peer's programs are still missing`);
}
