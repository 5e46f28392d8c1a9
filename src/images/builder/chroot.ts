/**
 * Running programs inside the image being built. The chroot gets its own /proc, /sys, /run
 * and, instead of a bind mount of the host's /dev, a private tmpfs holding only the usual
 * character devices plus the image's loop device and partitions, with /dev/disk/by-uuid
 * links for them. That matters twice: tools that scan /dev (GRUB's, for one) see only the
 * image's disk, never the host's, and grub-mkconfig writes `root=UUID=...` only when
 * /dev/disk/by-uuid/UUID exists, which build hosts without udev (containers, microVMs) lack.
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import type { ToolResult } from '../../build/process.js';
import { unmount } from '../../build/scratch.js';
import { killProcessesUsing } from './host-state.js';
import { runProcess, type RunOptions } from './process.js';
import type { Held, Teardown } from './teardown.js';

type Log = (line: string) => void;

export interface BlockNode {
  /** Path on the host, e.g. /dev/loop3p2. */
  device: string;
  /** Links to create below /dev/disk inside the chroot, e.g. `by-uuid/1234-ABCD`. */
  links: string[];
}

/** Environment of every program run in the image: non-interactive Debian packaging. */
export const CHROOT_ENV: Record<string, string> = {
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  // Package scripts must not find the build host's terminal or locale settings.
  TERM: 'dumb',
};

/** APT options for unattended builds: keep shipped config files, retry flaky downloads, no Recommends. */
export const APT_OPTIONS = [
  '-o', 'Dpkg::Options::=--force-confdef',
  '-o', 'Dpkg::Options::=--force-confold',
  '-o', 'APT::Install-Recommends=false',
  '-o', 'Acquire::Retries=3',
  '-q',
];

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

export interface Chroot {
  root: string;
  run(args: string[], options?: Partial<RunOptions>): Promise<ToolResult>;
  /** Unmounts everything this chroot mounted and removes the build-only files. */
  held: Held;
}

function deviceNumbers(device: string): [number, number] {
  const name = device.replace(/^\/dev\//, '');
  const text = readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim();
  const [major, minor] = text.split(':').map(Number);
  if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor)) {
    throw new PlinthError('internal', `cannot read the device numbers of ${device}`);
  }
  return [major, minor];
}

const CHARACTER_DEVICES: [name: string, major: number, minor: number][] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];

export async function openChroot(
  root: string,
  blockNodes: BlockNode[],
  teardown: Teardown,
  ctx: { log: Log; signal?: AbortSignal | undefined },
): Promise<Chroot> {
  const mounted: string[] = [];
  const mount = async (args: string[], point: string) => {
    mkdirSync(point, { recursive: true });
    await runProcess('mount', [...args, point], ctx);
    mounted.push(point);
  };
  const removeBuildFiles = () => {
    rmSync(join(root, POLICY_RC_D), { force: true });
  };
  const held = teardown.hold(`close chroot ${root}`, async () => {
    await killProcessesUsing(root, ctx.log);
    for (const point of mounted.reverse()) await unmount(point, ctx.log);
    removeBuildFiles();
  });

  await mount(['-t', 'proc', 'proc'], join(root, 'proc'));
  await mount(['-t', 'sysfs', 'sysfs'], join(root, 'sys'));
  await mount(['-t', 'tmpfs', '-o', 'mode=0755,size=16m,nosuid', 'image-build-dev'], join(root, 'dev'));
  const dev = join(root, 'dev');
  for (const [name, major, minor] of CHARACTER_DEVICES) {
    await runProcess('mknod', ['-m', '0666', join(dev, name), 'c', String(major), String(minor)], ctx);
  }
  for (const { device, links } of blockNodes) {
    const [major, minor] = deviceNumbers(device);
    const name = device.replace(/^\/dev\//, '');
    await runProcess('mknod', ['-m', '0660', join(dev, name), 'b', String(major), String(minor)], ctx);
    for (const link of links) {
      const path = join(dev, 'disk', link);
      mkdirSync(join(path, '..'), { recursive: true });
      symlinkSync(`../../${name}`, path);
    }
  }
  symlinkSync('/proc/self/fd', join(dev, 'fd'));
  for (const [i, name] of ['stdin', 'stdout', 'stderr'].entries()) symlinkSync(`/proc/self/fd/${i}`, join(dev, name));
  mkdirSync(join(dev, 'shm'), { mode: 0o1777 });
  await mount(['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620,gid=5', 'devpts'], join(dev, 'pts'));
  symlinkSync('pts/ptmx', join(dev, 'ptmx'));
  // A private /run keeps what package scripts drop there out of the image. /run/systemd/system
  // must not exist, or deb-systemd-invoke would believe systemd is running and start services.
  await mount(['-t', 'tmpfs', '-o', 'mode=0755,size=64m,nosuid,nodev', 'image-build-run'], join(root, 'run'));
  mkdirSync(join(root, 'run', 'lock'), { mode: 0o1777 });

  // Package scripts must not start daemons inside the chroot (invoke-rc.d asks policy-rc.d).
  writeFileSync(join(root, POLICY_RC_D), '#!/bin/sh\n# Written by the image build and removed after it: no daemons in the chroot.\nexit 101\n', { mode: 0o755 });
  // Name resolution for APT, from the host; the finished image gets an empty file instead.
  const resolvConf = join(root, 'etc', 'resolv.conf');
  if (existsSync(resolvConf) || isSymlink(resolvConf)) rmSync(resolvConf, { force: true });
  copyFileSync('/etc/resolv.conf', resolvConf);

  return {
    root,
    held,
    run: (args, options = {}) =>
      runProcess('chroot', [root, ...args], { log: ctx.log, signal: ctx.signal, ...options, env: { ...CHROOT_ENV, ...options.env } }),
  };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
