import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OnSuccess } from '../../protocol/deploy.js';
import type { TreeParams } from '../../protocol/agent.js';
import { applyDiskLayout, fstabOf, mdadmConfOf, mountLayout, type AppliedLayout } from './disk-layout.js';
import { StepError } from './errors.js';
import { ToolError, type Exec } from './exec.js';
import { writePrivateFile, writeSeedInto, type NoCloudSeed } from './seed.js';

/**
 * A tree deploy's work on the machine, between the layout and the first boot: copy the tree
 * of a role at a version onto the mounted file systems (rsync from Plinth's rsync daemon, else
 * its `.edeploy` tarball over HTTP), write what the installed system needs to find its disks
 * and its controller (fstab, mdadm.conf, eDeploy's /var/lib/edeploy/conf, the cloud-init
 * seed), install GRUB on every disk that can boot (each RAID member's disk), rebuild the
 * initramfs (so it assembles the arrays), and for ONSUCCESS=kexec load the installed kernel
 * with the command line GRUB would give it.
 */
export interface TreeTarget {
  dir: string;
  applied: AppliedLayout;
  unmount: () => Promise<void>;
}

async function run(exec: Exec, command: string, args: string[], code: 'tree' | 'boot-loader' | 'disk', timeoutMs = 3_600_000): Promise<string> {
  try {
    return (await exec(command, args, { timeoutMs })).stdout;
  } catch (e) {
    if (e instanceof ToolError && e.reason === 'missing') throw new StepError('tool', `${command} is not installed in the installer`, { command });
    if (e instanceof ToolError) throw new StepError(code, `${command} ${args.slice(0, 6).join(' ')}: ${e.stderr.trim().split('\n').slice(-3).join(' ') || e.message}`, { command });
    throw e;
  }
}

/** Lays out the disks and mounts them on a fresh directory. */
export async function layoutAndMount(layout: TreeParams['diskLayout'], disks: Parameters<typeof applyDiskLayout>[1], options: Parameters<typeof applyDiskLayout>[2]): Promise<TreeTarget> {
  const applied = await applyDiskLayout(layout, disks, options);
  const dir = await fsp.mkdtemp(join(tmpdir(), 'plinth-target-'));
  const unmount = await mountLayout(applied, dir, options.exec);
  return { dir, applied, unmount };
}

/** The controller's host as eDeploy's RSERV (an IPv6 address without brackets). */
export const rservOf = (controllerUrl: string): string => new URL(controllerUrl).hostname.replace(/^\[(.*)\]$/, '$1');

/** The tree on the controller's rsync daemon: rsync://HOST:PORT/install/VERSION/ROLE/. */
export function rsyncUrlOf(tree: TreeParams, controllerUrl: string): string | null {
  if (!tree.rsyncPort) return null;
  const host = rservOf(controllerUrl);
  return `rsync://${host.includes(':') ? `[${host}]` : host}:${tree.rsyncPort}/install/${tree.version}/${tree.role}/`;
}

/**
 * /var/lib/edeploy/conf as bin/edeploy reads it (shell variables; every value matches a safe
 * pattern or is quoted). PLINTH_URL is where the host reports its version (the controller the
 * installer was booted from, without a trailing slash).
 */
export function edeployConfOf(tree: TreeParams, controllerUrl: string): string {
  const q = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  const url = controllerUrl.replace(/\/+$/, '');
  return [`ROLE=${q(tree.role)}`, `VERS=${q(tree.version)}`, `RSERV=${q(rservOf(controllerUrl))}`, `RSERV_PORT=${tree.rsyncPort ?? 831}`, `PROFILE=${q(tree.profile)}`, `PLINTH_URL=${q(url)}`, ''].join('\n');
}

/** The systemd units that run `edeploy poll` (rolling upgrades reach the host by its asking; docs/decisions.md). */
export const POLL_SERVICE = `[Unit]
Description=Plinth: upgrade to the version a rolling upgrade wants (edeploy poll)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/edeploy poll
`;
export const POLL_TIMER = `[Unit]
Description=Plinth: ask the controller for rolling upgrades (edeploy poll)

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min
RandomizedDelaySec=1min

[Install]
WantedBy=timers.target
`;

/**
 * In a tree that runs systemd: `edeploy poll` every five minutes (a timer, enabled by its
 * symlink as `systemctl enable` would make it). bin/edeploy never synchronises these files, so
 * upgrades keep them. Returns the paths written (none without systemd).
 */
export async function writePollTimer(dir: string): Promise<string[]> {
  if (!['lib/systemd/systemd', 'usr/lib/systemd/systemd'].some((p) => existsSync(join(dir, p)))) return [];
  const units = join(dir, 'etc/systemd/system');
  await fsp.mkdir(join(units, 'timers.target.wants'), { recursive: true });
  await fsp.writeFile(join(units, 'edeploy-poll.service'), POLL_SERVICE, { mode: 0o644 });
  await fsp.writeFile(join(units, 'edeploy-poll.timer'), POLL_TIMER, { mode: 0o644 });
  const link = join(units, 'timers.target.wants/edeploy-poll.timer');
  await fsp.rm(link, { force: true });
  await fsp.symlink('/etc/systemd/system/edeploy-poll.timer', link);
  return ['/etc/systemd/system/edeploy-poll.service', '/etc/systemd/system/edeploy-poll.timer'];
}

/** Copies the tree onto the target: rsync when the controller runs its daemon, else the tarball. */
export async function copyTree(tree: TreeParams, controllerUrl: string, tarballUrl: string, target: string, exec: Exec, log: (l: string) => void): Promise<{ via: 'rsync' | 'http'; files: number | null }> {
  const rsyncUrl = rsyncUrlOf(tree, controllerUrl);
  if (rsyncUrl) {
    log(`copy-tree: rsync ${rsyncUrl}`);
    const out = await run(exec, 'rsync', ['-aHAXx', '--numeric-ids', '--stats', rsyncUrl, `${target}/`], 'tree');
    const files = /Number of regular files transferred: ([\d,]+)/.exec(out)?.[1];
    return { via: 'rsync', files: files ? Number(files.replaceAll(',', '')) : null };
  }
  log(`copy-tree: ${tarballUrl}`);
  // Downloaded onto the target itself: the installer's root is in memory, a tree can be larger.
  const file = join(target, '.plinth-tree.tar.gz');
  try {
    await run(exec, 'curl', ['--fail', '--silent', '--show-error', '--location', '--retry', '5', '--output', file, tarballUrl], 'tree');
    await run(exec, 'tar', ['-xzpf', file, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', target], 'tree');
  } finally {
    await fsp.rm(file, { force: true });
  }
  return { via: 'http', files: null };
}

/** Writes fstab, mdadm.conf, eDeploy's conf and the cloud-init seed into the installed system. */
export async function configureTarget(
  t: TreeTarget,
  tree: TreeParams,
  controllerUrl: string,
  seed: NoCloudSeed,
  kernelArgs: string | undefined,
  log: (l: string) => void,
): Promise<{ files: string[]; kernelArgsFiles: string[]; treeNamedArrays: boolean }> {
  const files: string[] = [];
  // ARRAY lines of the system the tree was made on would be in its initramfs too (installBootLoader).
  const treeMdadmConf = await fsp.readFile(join(t.dir, 'etc/mdadm/mdadm.conf'), 'utf8').catch(() => '');
  const write = async (path: string, content: string, mode = 0o644) => {
    const full = join(t.dir, path);
    await fsp.mkdir(join(full, '..'), { recursive: true });
    if (mode === 0o600) await writePrivateFile(full, content);
    else {
      await fsp.rm(full, { force: true });
      await fsp.writeFile(full, content, { mode });
      await fsp.chmod(full, mode);
    }
    files.push(`/${path}`);
  };
  await write('etc/fstab', fstabOf(t.applied));
  if (t.applied.mdadmArrays.length) await write('etc/mdadm/mdadm.conf', mdadmConfOf(t.applied));
  await write('var/lib/edeploy/conf', edeployConfOf(tree, controllerUrl), 0o600);
  // The host's credential for reporting its version: this machine's alone (auth/host-tokens.ts).
  if (tree.hostToken) await write('var/lib/edeploy/token', `${tree.hostToken}\n`, 0o600);
  await write('usr/local/sbin/edeploy', tree.edeployScript, 0o755);
  files.push(...(await writePollTimer(t.dir)));
  const kernelArgsFiles = await writeSeedInto(t.dir, seed, { log, kernelArgs }, t.applied.root.path);
  log(`configure: ${files.join(', ')} and the cloud-init seed written`);
  return { files, kernelArgsFiles, treeNamedArrays: /^ARRAY\s/m.test(treeMdadmConf) };
}

/** What the boot loader step did, and for kexec what it loaded. */
export interface BootLoaderResult {
  bios: string[];
  efi: boolean;
  /** Why the initramfs was rebuilt, or null when the tree's own was kept. */
  initramfsRebuilt: string | null;
  /** Seconds each command in the chroot took, in order (`update-grub`: 41.2). */
  seconds: Record<string, number>;
  kexec: { kernel: string; initrd: string; cmdline: string } | null;
}

/**
 * Why the tree's own initramfs cannot boot this layout, or null to keep it. Rebuilding it
 * (update-initramfs in a chroot) is most of a tree deploy's time on a slow machine, and an
 * initramfs made with mdadm (or LVM) in the tree assembles the arrays (activates the volume
 * groups) by scanning, as long as it names no arrays of its own: the root is found by its
 * file system's UUID. A layout the tree has no tools for is refused, not rebuilt.
 */
export async function initramfsRebuildReason(t: TreeTarget, treeNamedArrays: boolean, listInitramfs: (file: string) => Promise<string>): Promise<string | null> {
  const boot = join(t.dir, 'boot');
  const initrds = (await fsp.readdir(boot).catch(() => [] as string[])).filter((n) => n.startsWith('initrd.img-')).sort();
  if (initrds.length === 0) return 'the tree has no initramfs in /boot';
  const needs: { what: string; hook: string; tool: RegExp; package: string }[] = [];
  if (t.applied.mdadmArrays.length) needs.push({ what: 'RAID arrays', hook: 'mdadm', tool: /^(usr\/)?sbin\/mdadm$/m, package: 'mdadm' });
  if (t.applied.devices.some((d) => d.use === 'lvm')) needs.push({ what: 'LVM volume groups', hook: 'lvm2', tool: /^(usr\/)?sbin\/lvm$/m, package: 'lvm2' });
  for (const n of needs) {
    if (!existsSync(join(t.dir, 'usr/share/initramfs-tools/hooks', n.hook))) {
      throw new StepError('boot-loader', `the layout has ${n.what} and the tree has no ${n.package} (its initramfs hook): the installed system could not find its root; put ${n.package} in the tree`);
    }
  }
  if (needs.length === 0) return null;
  if (treeNamedArrays) return "the tree's /etc/mdadm/mdadm.conf named arrays of the system it was made on";
  for (const initrd of initrds) {
    const files = await listInitramfs(`/boot/${initrd}`);
    for (const n of needs) if (!n.tool.test(files)) return `${initrd} was made without ${n.package}`;
  }
  return null;
}

/**
 * GRUB on every disk with a BIOS boot partition (both RAID1 members: either disk boots alone),
 * GRUB for UEFI on the EFI system partition when the installer runs under UEFI, the initramfs
 * rebuilt (it carries mdadm.conf), grub.cfg made; all in a chroot of the installed system with
 * the installer's /dev, /proc and /sys bound in.
 */
export async function installBootLoader(t: TreeTarget, onSuccess: OnSuccess, exec: Exec, log: (l: string) => void, treeNamedArrays = false): Promise<BootLoaderResult> {
  const binds = ['dev', 'proc', 'sys', ...(existsSync('/sys/firmware/efi/efivars') ? ['sys/firmware/efi/efivars'] : [])];
  const bound: string[] = [];
  const seconds: Record<string, number> = {};
  const chroot = async (args: string[]) => {
    const started = performance.now();
    try {
      return await run(exec, 'chroot', [t.dir, ...args], 'boot-loader');
    } finally {
      const key = args.slice(0, args[0] === 'grub-install' ? 2 : 1).join(' ');
      seconds[key] = Math.round(((seconds[key] ?? 0) + (performance.now() - started) / 1000) * 10) / 10;
    }
  };
  try {
    for (const b of binds) {
      const dir = join(t.dir, b);
      await fsp.mkdir(dir, { recursive: true });
      await run(exec, 'mount', ['--bind', `/${b}`, dir], 'boot-loader');
      bound.push(dir);
    }
    const uefi = existsSync('/sys/firmware/efi') && t.applied.efiMounts.length > 0;
    if (!uefi && t.applied.biosBootDisks.length === 0) {
      throw new StepError('boot-loader', 'the disk layout has no bios-boot partition and this machine did not boot by UEFI (or the layout has no efi partition): GRUB has nowhere to go');
    }
    if (!existsSync(join(t.dir, 'usr/sbin/grub-install'))) throw new StepError('boot-loader', 'the tree has no /usr/sbin/grub-install (it needs grub-pc or grub-efi)');
    const rebuild = await initramfsRebuildReason(t, treeNamedArrays, (file) => chroot(['lsinitramfs', file]));
    if (rebuild) {
      log(`boot-loader: rebuilding the initramfs: ${rebuild}`);
      await chroot(['update-initramfs', '-u', '-k', 'all']);
    }
    const bios: string[] = [];
    if (existsSync(join(t.dir, 'usr/lib/grub/i386-pc'))) {
      for (const disk of t.applied.biosBootDisks) {
        await chroot(['grub-install', '--target=i386-pc', disk]);
        bios.push(disk);
      }
    }
    if (uefi) {
      await chroot(['grub-install', '--target=x86_64-efi', `--efi-directory=${t.applied.efiMounts[0]}`, '--bootloader-id=debian', '--removable', '--no-nvram']);
    }
    if (!uefi && bios.length === 0) throw new StepError('boot-loader', 'the tree has no GRUB for BIOS (/usr/lib/grub/i386-pc) and this machine did not boot by UEFI');
    await chroot(['update-grub']);
    const took = Object.entries(seconds).map(([k, v]) => `${k} ${v} s`).join(', ');
    log(`boot-loader: GRUB ${[bios.length ? `for BIOS on ${bios.join(', ')}` : '', uefi ? `for UEFI on ${t.applied.efiMounts[0]}` : ''].filter(Boolean).join(' and ')}; ${rebuild ? 'initramfs rebuilt' : "the tree's initramfs kept"} (${took})`);
    const kexec = onSuccess === 'kexec' ? await loadKexec(t.dir, exec, log) : null;
    return { bios, efi: uefi, initramfsRebuilt: rebuild, seconds, kexec };
  } finally {
    for (const dir of bound.reverse()) await exec('umount', ['-l', dir]).catch(() => undefined);
  }
}

/** The first menu entry of the installed grub.cfg: its kernel, initrd and command line. */
export function firstGrubEntry(grubCfg: string): { kernel: string; initrd: string | null; cmdline: string } | null {
  const linux = /^[ \t]*linux(?:16|efi)?[ \t]+(\S+)[ \t]*(.*)$/m.exec(grubCfg);
  if (!linux) return null;
  const after = grubCfg.slice(linux.index);
  const initrd = /^[ \t]*initrd(?:16|efi)?[ \t]+(\S+)/m.exec(after);
  return { kernel: linux[1]!, initrd: initrd?.[1] ?? null, cmdline: linux[2]!.trim() };
}

async function loadKexec(dir: string, exec: Exec, log: (l: string) => void): Promise<BootLoaderResult['kexec']> {
  const entry = firstGrubEntry(await fsp.readFile(join(dir, 'boot/grub/grub.cfg'), 'utf8'));
  if (!entry || !entry.initrd) throw new StepError('boot-loader', 'kexec: the installed grub.cfg has no linux and initrd lines to boot');
  // GRUB's paths are relative to the file system that holds /boot: / or a separate /boot.
  const find = (p: string) => [join(dir, p), join(dir, 'boot', p)].find((f) => existsSync(f));
  const kernel = find(entry.kernel);
  const initrd = find(entry.initrd);
  if (!kernel || !initrd) throw new StepError('boot-loader', `kexec: ${entry.kernel} or ${entry.initrd} is not in the installed system`);
  await run(exec, 'kexec', ['--load', kernel, `--initrd=${initrd}`, `--append=${entry.cmdline}`], 'boot-loader', 120_000);
  log(`boot-loader: kexec loaded ${entry.kernel} with "${entry.cmdline}"`);
  return { kernel: entry.kernel, initrd: entry.initrd, cmdline: entry.cmdline };
}
