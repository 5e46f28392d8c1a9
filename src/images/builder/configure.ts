/**
 * Turns the base system into an image that boots anywhere and configures itself on first
 * boot: fstab by UUID, serial console, cloud-init with the NoCloud datasource, no identity of
 * its own (empty machine-id, no SSH host keys, locked root), and no trace of the build.
 */
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APT_OPTIONS, type Chroot } from './chroot.js';
import { unmount } from '../../build/scratch.js';
import { isPlinthError, PlinthError } from '../../core/errors.js';
import { outputOf } from '../../build/process.js';
import { runProcess } from './process.js';
import type { Held, Teardown } from './teardown.js';

export interface FilesystemIds {
  rootFsUuid: string;
  espVolumeId: string;
}

const GENERATED = 'Written by the Plinth image builder.';

export function fstab(ids: FilesystemIds): string {
  return [
    `# ${GENERATED}`,
    '# <file system>  <mount point>  <type>  <options>  <dump>  <pass>',
    `UUID=${ids.rootFsUuid}  /  ext4  errors=remount-ro  0  1`,
    // nofail: the boot neither waits for the ESP nor fails without it (it is only needed to
    // update GRUB); it is mounted when its device appears.
    // NOTE: no short x-systemd.device-timeout: under emulation udev needs over 10 s to
    // create the disk's devices, and a timed-out device is never mounted afterwards.
    `UUID=${ids.espVolumeId}  /boot/efi  vfat  umask=0077,nofail  0  2`,
    '',
  ].join('\n');
}

/**
 * GRUB settings, read by update-grub after /etc/default/grub. The kernel logs to the screen
 * and to the first serial port; the last console= (ttyS0) becomes /dev/console, where
 * systemd and cloud-init report, and where systemd starts a login prompt.
 */
export const GRUB_SETTINGS = [
  `# ${GENERATED} Serial console on ttyS0 as well as the screen.`,
  'GRUB_TIMEOUT=2',
  'GRUB_TERMINAL="serial console"',
  'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1"',
  'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"',
  // Without "quiet": the boot log on the serial console is what tells why a deploy failed.
  'GRUB_CMDLINE_LINUX_DEFAULT=""',
  'GRUB_DISABLE_OS_PROBER=true',
  '',
].join('\n');

export const CLOUD_INIT_DATASOURCES = ['NoCloud', 'None'];

/**
 * cloud-init settings. The datasource list stays on one line: ds-identify reads it with a
 * line-based parser. Without a seed, the None datasource still runs the first-boot modules
 * (SSH host keys, DHCP on the first NIC, growing the root file system).
 */
export const CLOUD_INIT_CONFIG = [
  `# ${GENERATED}`,
  `datasource_list: [ ${CLOUD_INIT_DATASOURCES.join(', ')} ]`,
  // /etc/hosts from cloud-init's template on every boot, so that the hostname it sets resolves (sudo needs it).
  'manage_etc_hosts: true',
  // OpenSSH 9 no longer accepts DSA host keys; generating one only slows the first boot.
  'ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]',
  '',
].join('\n');

/**
 * Debian's sshd refuses to start without host keys and, unlike some distributions, never
 * makes them at boot: cloud-init's ssh module does, on each new instance. This unit covers
 * images booted with cloud-init disabled.
 */
export const SSH_HOST_KEYS_UNIT_NAME = 'ssh-host-keys-on-first-boot.service';
export const SSH_HOST_KEYS_UNIT = [
  `# ${GENERATED}`,
  '[Unit]',
  'Description=Generate SSH host keys when none exist',
  'ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key',
  'After=cloud-init.service',
  'Before=ssh.service',
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/usr/bin/ssh-keygen -A',
  '',
  '[Install]',
  'WantedBy=ssh.service',
  '',
].join('\n');

const HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\t\tlocalhost ip6-localhost ip6-loopback',
  'ff02::1\t\tip6-allnodes',
  'ff02::2\t\tip6-allrouters',
  '',
].join('\n');

function writeFile(root: string, path: string, content: string, mode = 0o644): void {
  const target = join(root, path);
  mkdirSync(join(target, '..'), { recursive: true });
  if (isSymlink(target)) rmSync(target);
  writeFileSync(target, content, { mode });
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A tree's fstab: its deploy writes the real one from the disk layout. */
export const TREE_FSTAB = `# ${GENERATED} A tree deploy writes this file from its disk layout.\n`;

/** `ids`: the image's file systems; null for a tree, whose file systems its deploy makes. */
export async function configureImage(chroot: Chroot, ids: FilesystemIds | null): Promise<void> {
  const { root } = chroot;
  writeFile(root, 'etc/fstab', ids ? fstab(ids) : TREE_FSTAB);
  mkdirSync(join(root, 'boot/efi'), { recursive: true, mode: 0o700 });
  writeFile(root, 'etc/default/grub.d/50-plinth-image.cfg', GRUB_SETTINGS);
  writeFile(root, 'etc/cloud/cloud.cfg.d/99_plinth-image.cfg', CLOUD_INIT_CONFIG);
  // cloud-init's locale module would otherwise run locale-gen for en_US.UTF-8, which needs
  // the `locales` package; C.UTF-8 is built into libc.
  writeFile(root, 'etc/default/locale', 'LANG=C.UTF-8\n');
  writeFile(root, 'etc/hostname', 'localhost\n');
  writeFile(root, 'etc/hosts', HOSTS);
  writeFile(root, `etc/systemd/system/${SSH_HOST_KEYS_UNIT_NAME}`, SSH_HOST_KEYS_UNIT);
  await chroot.run(['systemctl', 'enable', SSH_HOST_KEYS_UNIT_NAME]);
  // NOTE: with an empty /etc/machine-id systemd treats the first boot as "first boot", and
  // Debian 12 then runs systemd-firstboot, which waits on the console for a locale,
  // timezone and root password nobody will type. cloud-init does that job.
  const firstboot = join(root, 'etc/systemd/system/systemd-firstboot.service');
  rmSync(firstboot, { force: true });
  symlinkSync('/dev/null', firstboot);
  // Locked: no password, not even an empty one, can log in as root. Access is through the
  // user cloud-init creates with the operator's SSH key.
  await chroot.run(['usermod', '--lock', 'root']);
}

/**
 * Runs the operator's script inside the image, with the package cache mounted and fresh
 * package lists so that it can install packages. A script without `#!` runs with /bin/sh.
 */
export async function runPostInstallScript(
  chroot: Chroot,
  script: { path: string; imageName: string; aptArchives: string },
  teardown: Teardown,
  log: (line: string) => void,
): Promise<void> {
  const { root } = chroot;
  const inside = '/var/tmp/plinth-post-install';
  copyFileSync(script.path, join(root, inside));
  chmodSync(join(root, inside), 0o755);
  const mounted = await withFreshPackageLists(chroot, script.aptArchives, teardown, log);
  try {
    const hasInterpreter = readFileSync(script.path, 'utf8').startsWith('#!');
    try {
      await chroot.run(hasInterpreter ? [inside] : ['/bin/sh', inside], { env: { PLINTH_IMAGE_NAME: script.imageName } });
    } catch (e) {
      if (!isPlinthError(e) || e.details?.exitCode === undefined) throw e;
      const last = outputOf(e).at(-1);
      throw new PlinthError('unsupported', `post-install script ${script.path} failed (exit code ${String(e.details.exitCode)})${last ? `: ${last}` : ''}`, {
        details: e.details,
        cause: e,
      });
    }
  } finally {
    await mounted.release();
    rmSync(join(root, inside), { force: true });
  }
}

/**
 * The package cache mounted at the chroot's APT archives and fresh package lists, so that
 * packages can be installed; release the result to unmount it.
 */
async function withFreshPackageLists(chroot: Chroot, aptArchives: string, teardown: Teardown, log: (line: string) => void): Promise<Held> {
  const archives = join(chroot.root, 'var/cache/apt/archives');
  mkdirSync(join(aptArchives, 'partial'), { recursive: true });
  await runProcess('mount', ['--bind', aptArchives, archives], { log });
  const mounted = teardown.hold(`unmount ${archives}`, () => unmount(archives, log));
  await chroot.run(['apt-get', ...APT_OPTIONS, 'update']);
  return mounted;
}

/** Installs Debian packages on top of the base system (which stays cached as it was). */
export async function installPackages(chroot: Chroot, packages: readonly string[], aptArchives: string, teardown: Teardown, log: (line: string) => void): Promise<void> {
  const mounted = await withFreshPackageLists(chroot, aptArchives, teardown, log);
  try {
    await chroot.run(['apt-get', ...APT_OPTIONS, '-y', 'install', ...packages]);
  } finally {
    await mounted.release();
  }
}

/** Removes every trace of the build and every identity the image must not share between machines. */
export async function scrubImage(chroot: Chroot): Promise<void> {
  const { root } = chroot;
  await chroot.run(['apt-get', ...APT_OPTIONS, 'clean']);
  const lists = join(root, 'var/lib/apt/lists');
  for (const entry of readdirSync(lists)) if (entry !== 'partial' && entry !== 'lock') rmSync(join(lists, entry), { recursive: true, force: true });
  for (const entry of readdirSync(join(root, 'etc/ssh'))) if (/^ssh_host_.*key(\.pub)?$/.test(entry)) rmSync(join(root, 'etc/ssh', entry));
  // An empty machine-id (not a missing one) makes systemd generate a new one on first boot.
  writeFile(root, 'etc/machine-id', '', 0o444);
  for (const path of ['var/lib/dbus/machine-id', 'var/lib/systemd/random-seed', 'var/lib/systemd/credential.secret']) {
    rmSync(join(root, path), { force: true });
  }
  rmSync(join(root, 'var/lib/cloud'), { recursive: true, force: true });
  removeFilesBelow(join(root, 'var/log'));
  for (const dir of ['tmp', 'var/tmp']) for (const entry of readdirSync(join(root, dir))) rmSync(join(root, dir, entry), { recursive: true, force: true });
  for (const entry of readdirSync(join(root, 'var/cache/debconf'))) if (entry.endsWith('-old')) rmSync(join(root, 'var/cache/debconf', entry));
  // Filled by dhclient on the deployed machine.
  writeFile(root, 'etc/resolv.conf', '');
}

/** Deletes the files of a tree but keeps its directories (packages expect their log directories). */
function removeFilesBelow(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) removeFilesBelow(path);
    else rmSync(path, { force: true });
  }
}
