/**
 * The host programs an image build runs, and the Debian package each comes from. GRUB is not
 * among them: the boot loaders are installed by the image's own GRUB inside the chroot.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import { runProcess } from './process.js';

export interface HostRequirement {
  /** A program looked up in PATH (plus the sbin directories), or an absolute file path. */
  need: string;
  debianPackage: string;
}

export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export const BUILD_HOST_REQUIREMENTS: readonly HostRequirement[] = [
  { need: 'debootstrap', debianPackage: 'debootstrap' },
  { need: DEBIAN_ARCHIVE_KEYRING, debianPackage: 'debian-archive-keyring' },
  { need: 'sgdisk', debianPackage: 'gdisk' },
  { need: 'mkfs.vfat', debianPackage: 'dosfstools' },
  { need: 'fsck.vfat', debianPackage: 'dosfstools' },
  { need: 'mcopy', debianPackage: 'mtools' },
  { need: 'mkfs.ext4', debianPackage: 'e2fsprogs' },
  { need: 'e2fsck', debianPackage: 'e2fsprogs' },
  { need: 'zstd', debianPackage: 'zstd' },
  { need: 'tar', debianPackage: 'tar' },
  { need: 'losetup', debianPackage: 'mount' },
  { need: 'mount', debianPackage: 'mount' },
  { need: 'partx', debianPackage: 'util-linux' },
  { need: 'fstrim', debianPackage: 'util-linux' },
  { need: 'fallocate', debianPackage: 'util-linux' },
  { need: 'blockdev', debianPackage: 'util-linux' },
  { need: 'chroot', debianPackage: 'coreutils' },
  { need: 'mknod', debianPackage: 'coreutils' },
];

/** What the NoCloud seed of the lab tests needs on top (a FAT image made without mounting). */
export const SEED_HOST_REQUIREMENTS: readonly HostRequirement[] = [
  { need: 'mkfs.vfat', debianPackage: 'dosfstools' },
  { need: 'mcopy', debianPackage: 'mtools' },
];

const SEARCH_EXTRA = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function findProgram(name: string, path = process.env.PATH ?? ''): string | null {
  if (name.startsWith('/')) return existsSync(name) ? name : null;
  for (const dir of [...path.split(delimiter).filter(Boolean), ...SEARCH_EXTRA]) {
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

export const missingRequirements = (requirements: readonly HostRequirement[], find = findProgram): HostRequirement[] =>
  requirements.filter((r) => find(r.need) === null);

export const packagesFor = (missing: readonly HostRequirement[]): string[] => [...new Set(missing.map((r) => r.debianPackage))].sort();

/** The one-line error for a host that lacks tools and may not install them. */
export function missingToolsMessage(missing: readonly HostRequirement[]): string {
  const packages = packagesFor(missing);
  const what = missing.map((r) => `${r.need} (package ${r.debianPackage})`).join(', ');
  return `missing host tools: ${what}; install with: apt-get install ${packages.join(' ')}`;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Makes sure the host has every requirement: installs the missing Debian packages with
 * apt-get when running as root, and fails with one line naming them otherwise.
 */
export async function ensureHostTools(
  requirements: readonly HostRequirement[],
  options: { log: (line: string) => void; signal?: AbortSignal },
): Promise<void> {
  const missing = missingRequirements(requirements);
  if (missing.length === 0) return;
  if (!isRoot() || findProgram('apt-get') === null) throw new PlinthError('unavailable', missingToolsMessage(missing));
  const packages = packagesFor(missing);
  options.log(`installing host packages: ${packages.join(' ')}`);
  const install = () =>
    runProcess(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...packages],
      { ...options, env: { DEBIAN_FRONTEND: 'noninteractive' } },
    );
  try {
    await install();
  } catch {
    // NOTE: a fresh host often has no package lists yet; refresh them once and retry.
    await runProcess('apt-get', ['update', '-q', '-o', 'DPkg::Lock::Timeout=300'], options);
    await install();
  }
  const stillMissing = missingRequirements(requirements);
  if (stillMissing.length > 0) throw new PlinthError('unavailable', missingToolsMessage(stillMissing));
}
