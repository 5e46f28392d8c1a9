/**
 * The base system of an image: Debian from debootstrap plus every package the image gets,
 * fresh from the archive's security and point-release updates. It is the slow, network-bound
 * part of a build, so it is cached twice:
 *
 * - downloaded .debs stay in the cache (debootstrap's --cache-dir, and APT's archive
 *   directory bind-mounted from the cache), so a rebuild downloads only what changed;
 * - the installed tree is snapshotted to a zstd tarball keyed by every input that shapes it
 *   (suite, mirrors, package list, recipe version). A build whose inputs match a snapshot
 *   younger than BASE_SNAPSHOT_MAX_AGE_MS unpacks it instead, so changing only the
 *   post-install script (which runs later) costs no download and no package installation.
 *
 * The age limit is what lets security updates in: an older snapshot is rebuilt.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { supersededEntries } from '../../build/cache.js';
import { cacheKey } from '../../build/digest.js';
import { APT_OPTIONS, openChroot, type BlockNode, type Chroot } from './chroot.js';
import { DEBIAN_ARCHIVE_KEYRING } from './host-tools.js';
import { unmount } from '../../build/scratch.js';
import { ARCHITECTURE, DEBIAN_SUITE, type ResolvedBuildOptions } from './options.js';
import { runProcess } from './process.js';
import type { Teardown } from './teardown.js';

/** Bump when the steps below change what a base system contains: old snapshots stop matching. */
export const BASE_RECIPE_VERSION = 1;
export const BASE_SNAPSHOT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
const SNAPSHOTS_KEPT = 3;

/**
 * What every image has. No Recommends are installed, so this is the whole list (with the
 * dependencies APT adds).
 */
export const BASE_PACKAGES: readonly string[] = [
  // Boot: kernel and initramfs, GRUB for BIOS and UEFI (shim + Debian-signed GRUB for Secure Boot).
  'linux-image-amd64',
  'initramfs-tools',
  'zstd',
  'grub-cloud-amd64',
  // init and the basics of a managed server.
  'systemd-sysv',
  'udev',
  'dbus',
  'kmod',
  'systemd-timesyncd',
  'sudo',
  'less',
  'procps',
  'ca-certificates',
  // Network: cloud-init on Debian 12 renders network-config to ifupdown (its 'eni' renderer
  // comes first and is available when ifup/ifdown exist); dhclient does DHCP.
  'ifupdown',
  'isc-dhcp-client',
  'iproute2',
  'iputils-ping',
  'netbase',
  // First-boot configuration and growing the root file system to the disk.
  'cloud-init',
  'cloud-guest-utils',
  'gdisk',
  'e2fsprogs',
  'dosfstools',
  'openssh-server',
];

/** Answers for package questions, given before installation. */
const DEBCONF_SELECTIONS = [
  // Debian's cloud-init asks which datasources to probe (written to cloud.cfg.d/90_dpkg.cfg).
  'cloud-init cloud-init/datasources multiselect NoCloud, None',
].join('\n');

export interface BaseInputs {
  recipe: number;
  suite: string;
  architecture: string;
  variant: 'minbase';
  mirror: string;
  securityMirror: string | null;
  packages: string[];
}

export function baseInputs(options: Pick<ResolvedBuildOptions, 'mirror' | 'securityMirror' | 'extraPackages'>): BaseInputs {
  return {
    recipe: BASE_RECIPE_VERSION,
    suite: DEBIAN_SUITE,
    architecture: ARCHITECTURE,
    variant: 'minbase',
    mirror: options.mirror,
    securityMirror: options.securityMirror,
    packages: [...new Set([...BASE_PACKAGES, ...options.extraPackages])].sort(),
  };
}

/** The snapshot key: a hash of the inputs, equal for equal inputs whatever their key order. */
export const baseKey = (inputs: BaseInputs): string => cacheKey(inputs);

/** APT sources of the image, in the deb822 format Debian 12 uses. */
export function aptSources(mirror: string, securityMirror: string | null): string {
  const stanza = (uri: string, suites: string) =>
    `Types: deb\nURIs: ${uri}\nSuites: ${suites}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
  const parts = [stanza(mirror, `${DEBIAN_SUITE} ${DEBIAN_SUITE}-updates`)];
  if (securityMirror) parts.push(stanza(securityMirror, `${DEBIAN_SUITE}-security`));
  return parts.join('\n');
}

export interface BaseSystem {
  key: string;
  reused: boolean;
}

interface Ctx {
  options: ResolvedBuildOptions;
  teardown: Teardown;
  blockNodes: BlockNode[];
}

export const cachePaths = (cacheDir: string) => ({
  debootstrapDebs: join(cacheDir, 'debootstrap-debs'),
  aptArchives: join(cacheDir, 'apt-archives'),
  snapshots: join(cacheDir, 'base-snapshots'),
});

export const TAR_OPTIONS = ['--numeric-owner', '--xattrs', "--xattrs-include=*", '--acls'];

/**
 * Fills the mounted root file system `root` with the base system, from a snapshot when one
 * matches, and returns the chroot (opened on it) that the rest of the build uses.
 */
export async function installBaseSystem(root: string, ctx: Ctx): Promise<{ base: BaseSystem; chroot: Chroot }> {
  const { options } = ctx;
  const { log, signal } = options;
  const paths = cachePaths(options.cacheDir);
  const inputs = baseInputs(options);
  const key = baseKey(inputs);
  const snapshot = join(paths.snapshots, `${key}.tar.zst`);
  removePartialSnapshots(paths.snapshots, log);

  const fresh = existsSync(snapshot) && Date.now() - statSync(snapshot).mtimeMs < BASE_SNAPSHOT_MAX_AGE_MS;
  if (fresh && !options.refreshBase) {
    log(`reusing base system snapshot ${key} (${new Date(statSync(snapshot).mtimeMs).toISOString()})`);
    await runProcess('tar', ['--zstd', '-xpf', snapshot, ...TAR_OPTIONS, '-C', root], { log, signal });
    const chroot = await openChroot(root, ctx.blockNodes, ctx.teardown, { log, signal });
    return { base: { key, reused: true }, chroot };
  }

  log(`debootstrap ${DEBIAN_SUITE} from ${options.mirror}`);
  mkdirSync(paths.debootstrapDebs, { recursive: true });
  await runProcess(
    'debootstrap',
    [
      `--variant=${inputs.variant}`,
      `--arch=${ARCHITECTURE}`,
      '--components=main',
      `--keyring=${DEBIAN_ARCHIVE_KEYRING}`,
      `--cache-dir=${paths.debootstrapDebs}`,
      DEBIAN_SUITE,
      root,
      options.mirror,
    ],
    { log, signal },
  );

  let chroot = await openChroot(root, ctx.blockNodes, ctx.teardown, { log, signal });
  rmSync(join(root, 'etc/apt/sources.list'), { force: true });
  writeFileSync(join(root, 'etc/apt/sources.list.d/debian.sources'), aptSources(options.mirror, options.securityMirror));
  await chroot.run(['debconf-set-selections'], { input: DEBCONF_SELECTIONS + '\n' });

  const archives = join(root, 'var/cache/apt/archives');
  mkdirSync(join(paths.aptArchives, 'partial'), { recursive: true });
  await runProcess('mount', ['--bind', paths.aptArchives, archives], { log, signal });
  const archivesMount = ctx.teardown.hold(`unmount ${archives}`, () => unmount(archives, log));
  log(`installing ${inputs.packages.length} packages and updates`);
  await chroot.run(['apt-get', ...APT_OPTIONS, 'update']);
  await chroot.run(['apt-get', ...APT_OPTIONS, '-y', 'dist-upgrade']);
  await chroot.run(['apt-get', ...APT_OPTIONS, '-y', 'install', ...inputs.packages]);
  await archivesMount.release();

  // The snapshot is taken with nothing mounted, so it holds the image's own /dev, /proc, /run.
  await chroot.held.release();
  await writeSnapshot(root, snapshot, inputs, { log, signal });
  pruneSnapshots(paths.snapshots, log);
  chroot = await openChroot(root, ctx.blockNodes, ctx.teardown, { log, signal });
  return { base: { key, reused: false }, chroot };
}

async function writeSnapshot(root: string, snapshot: string, inputs: BaseInputs, ctx: { log: (line: string) => void; signal?: AbortSignal | undefined }) {
  const dir = join(snapshot, '..');
  mkdirSync(dir, { recursive: true });
  const partial = `${snapshot}.partial-${process.pid}`;
  ctx.log(`saving base system snapshot ${snapshot}`);
  try {
    await runProcess(
      'tar',
      ['-I', 'zstd -T0 -3', '-cpf', partial, ...TAR_OPTIONS, '--sort=name', '--exclude=./lost+found', '--exclude=./etc/resolv.conf', '-C', root, '.'],
      ctx,
    );
    writeFileSync(snapshot.replace(/\.tar\.zst$/, '.json'), JSON.stringify({ ...inputs, createdAt: new Date().toISOString() }, null, 2) + '\n');
    renameSync(partial, snapshot);
  } finally {
    rmSync(partial, { force: true });
  }
}

/** Snapshots a killed build was writing (the cache lock says no other build is writing one now). */
function removePartialSnapshots(dir: string, log: (line: string) => void): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    if (!/\.partial-\d+$/.test(f)) continue;
    log(`removing unfinished base system snapshot ${f}`);
    rmSync(join(dir, f), { force: true });
  }
}

/** Keeps the newest few snapshots: each is several hundred MB. */
function pruneSnapshots(dir: string, log: (line: string) => void): void {
  for (const f of supersededEntries(dir, SNAPSHOTS_KEPT, { select: (name) => name.endsWith('.tar.zst') })) {
    log(`removing old base system snapshot ${f}`);
    rmSync(join(dir, f), { force: true });
    rmSync(join(dir, f.replace(/\.tar\.zst$/, '.json')), { force: true });
  }
}

