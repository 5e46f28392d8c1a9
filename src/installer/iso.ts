/**
 * A bootable ISO of the installer, for virtual media (a BMC's virtual CD) where no DHCP
 * server points the machine at Plinth. It is Debian's `grub-mkrescue` (GRUB for BIOS from
 * El Torito and for UEFI from its EFI system partition image, xorriso writing the ISO, mtools
 * the FAT image) around the installer's kernel and initramfs, with a GRUB menu that boots them
 * at once with the controller's URL on the kernel command line. Without DHCP boot options the
 * command line is all the installer knows: it carries `plinth.url` (and no run ticket, which
 * the agent asks for once booted: see /boot/agent-ticket).
 *
 * ISOs are kept in a directory of their own, named by a hash of their inputs (the kernel and
 * initramfs files as they are on disk, and the command line): the same installer for the same
 * controller URL is a cache hit. Building takes seconds; the controller builds on the first
 * request for /boot/installer.iso, `plinth installer build --iso` ahead of time.
 */
import { existsSync, linkSync, copyFileSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { cacheKey } from '../build/digest.js';
import { ensureHostTools, missingTools, missingToolsMessage, packagesFor, type HostTool } from '../build/host-tools.js';
import { runTool } from '../build/process.js';
import { makeScratchDir, removeScratchDir } from '../build/scratch.js';
import { installerTool } from './tools.js';

/** What grub-mkrescue needs: itself, xorriso, mtools, and GRUB's BIOS and UEFI modules. */
export const ISO_HOST_TOOLS: HostTool[] = [
  { need: 'grub-mkrescue', debianPackage: 'grub-common' },
  { need: 'xorriso', debianPackage: 'xorriso' },
  { need: 'mformat', debianPackage: 'mtools' },
  { need: '/usr/lib/grub/i386-pc/cdboot.img', debianPackage: 'grub-pc-bin' },
  { need: '/usr/lib/grub/x86_64-efi/linux.mod', debianPackage: 'grub-efi-amd64-bin' },
];

/** Bumped when the ISO's layout or GRUB configuration changes. */
const ISO_VERSION = '2';
/** ISOs of older installers or other URLs kept besides the newest. */
const KEEP_OLD_ISOS = 1;

/** Marks an installer booted from the ISO: the agent asks for its run's ticket. */
export const VMEDIA_BOOT_ARG = 'plinth.boot=vmedia';

/** The installer's kernel command line on the ISO: the controller URL the agent reaches, and the configured arguments. */
export function isoKernelCmdline(agentUrl: string, kernelArgs: string): string {
  const url = agentUrl.replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s'"\\]+$/.test(url)) throw new PlinthError('validation', `the ISO needs an http(s) controller URL without spaces or quotes; got '${agentUrl}'`, { details: { field: 'publicUrl' } });
  return `plinth.url=${url} ${VMEDIA_BOOT_ARG} ${kernelArgs}`.trim();
}

/** A machine's static IPv4 configuration, for an ISO booted where no DHCP server answers. */
export interface IsoStaticNetwork {
  address: string;
  /** Dotted (255.255.255.0). */
  netmask: string;
  gateway?: string;
  dns?: string[];
  /** The card to configure (BOOTIF=); without it, the installer's first card. */
  mac?: string | null;
}

/**
 * The kernel command line words that give the installer a static address instead of DHCP:
 * `ip=` in the kernel's (and initramfs-tools') format, client:server:gateway:netmask:hostname:
 * device:autoconf:dns0:dns1, and `BOOTIF=01-<mac>` (PXELINUX's) naming the card, as a device
 * name cannot be known before the installer's kernel names its cards.
 */
export function staticNetworkArgs(n: IsoStaticNetwork): string {
  const dns = (n.dns ?? []).slice(0, 2);
  const words = [`ip=${n.address}::${n.gateway ?? ''}:${n.netmask}:::off:${dns[0] ?? ''}:${dns[1] ?? ''}`];
  if (n.mac) words.push(`BOOTIF=01-${n.mac.toLowerCase().replaceAll(':', '-')}`);
  return words.join(' ');
}

/** GRUB quotes words as the shell does: inside '…' nothing is special but the quote itself. */
const grubWord = (w: string): string => `'${w.replaceAll("'", `'\\''`)}'`;

/** The GRUB menu on the ISO: boots the installer at once, on the serial console as well as the screen. */
export function isoGrubConfig(cmdline: string): string {
  const words = cmdline.split(/\s+/).filter(Boolean).map(grubWord).join(' ');
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'set timeout=0',
    'set default=0',
    "menuentry 'Plinth installer' {",
    `  linux /plinth/vmlinuz ${words}`,
    '  initrd /plinth/initrd.img',
    '}',
    '',
  ].join('\n');
}

export interface InstallerIsoOptions {
  kernel: string;
  initrd: string;
  cmdline: string;
  /** Where ISOs are kept (DATA_DIR/boot/installer-iso). */
  dir: string;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** ISOs of other inputs kept in `dir` besides the newest (default 1). */
  keepOld?: number;
  /**
   * Install missing host packages with apt-get (as root), as `plinth installer build` does;
   * otherwise (the controller answering a request) a missing one fails naming its package.
   */
  installTools?: boolean;
}

export interface InstallerIsoResult {
  path: string;
  cacheHit: boolean;
  bytes: number;
}

const isoName = (o: Pick<InstallerIsoOptions, 'kernel' | 'initrd' | 'cmdline'>): string => {
  const file = (p: string) => {
    const s = statSync(p);
    return { path: p, size: s.size, mtimeMs: s.mtimeMs };
  };
  return `installer-${cacheKey({ v: ISO_VERSION, kernel: file(o.kernel), initrd: file(o.initrd), cmdline: o.cmdline }).slice(0, 16)}.iso`;
};

/** The ISO for these inputs, if it is already built. */
export function builtInstallerIso(o: Pick<InstallerIsoOptions, 'kernel' | 'initrd' | 'cmdline' | 'dir'>): string | null {
  const path = join(o.dir, isoName(o));
  return existsSync(path) ? path : null;
}

/**
 * Hard link where the file system allows it (no copy of the initramfs), else a copy. A symlink
 * is followed first: xorriso would put the link itself on the ISO, which GRUB cannot follow.
 */
function place(from: string, to: string): void {
  from = realpathSync(from);
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * Builds (or finds) the installer ISO for a kernel, initramfs and command line. Concurrent
 * builds of the same ISO each write a file of their own and rename it into place: the last
 * one wins, and every reader sees a whole file.
 */
export async function buildInstallerIso(o: InstallerIsoOptions): Promise<InstallerIsoResult> {
  for (const f of [o.kernel, o.initrd]) if (!existsSync(f)) throw new PlinthError('unavailable', `${f} is missing: run \`plinth installer build\` first`);
  const name = isoName(o);
  const path = join(o.dir, name);
  if (existsSync(path)) return { path, cacheHit: true, bytes: statSync(path).size };
  if (o.installTools) await ensureHostTools(ISO_HOST_TOOLS, { log: o.log, signal: o.signal });
  else {
    const missing = missingTools(ISO_HOST_TOOLS);
    if (missing.length > 0) throw new PlinthError('unavailable', `cannot build the installer ISO: ${missingToolsMessage(missing)}`, { details: { missingPackages: packagesFor(missing) } });
  }
  mkdirSync(o.dir, { recursive: true });
  const scratch = makeScratchDir(o.dir, 'iso-');
  try {
    const root = join(scratch, 'root');
    mkdirSync(join(root, 'boot', 'grub'), { recursive: true });
    mkdirSync(join(root, 'plinth'));
    place(o.kernel, join(root, 'plinth', 'vmlinuz'));
    place(o.initrd, join(root, 'plinth', 'initrd.img'));
    writeFileSync(join(root, 'boot', 'grub', 'grub.cfg'), isoGrubConfig(o.cmdline));
    const tmp = join(scratch, name);
    o.log(`building the installer ISO ${name} (grub-mkrescue, BIOS and UEFI)`);
    await runTool('grub-mkrescue', ['-o', tmp, root, '--', '-volid', 'PLINTH'], { ...installerTool(o.signal), job: 'installer ISO build' });
    renameSync(tmp, path);
  } finally {
    await removeScratchDir(scratch);
  }
  pruneIsos(o.dir, name, o.keepOld ?? KEEP_OLD_ISOS);
  return { path, cacheHit: false, bytes: statSync(path).size };
}

/** Removes all but the newest ISOs (a controller serving an older one keeps its open file). */
function pruneIsos(dir: string, keep: string, keepOld: number): void {
  const old = readdirSync(dir)
    .filter((f) => f.startsWith('installer-') && f.endsWith('.iso') && f !== keep)
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of old.slice(keepOld)) rmSync(join(dir, f), { force: true });
}

/** Where a controller keeps its installer ISOs. */
export const installerIsoDir = (dataDir: string): string => join(dataDir, 'boot', 'installer-iso');

/** Where a machine's own ISO (its static network on the command line) is kept, one at a time. */
export const machineIsoDir = (isoDir: string, machineId: string): string => join(isoDir, 'machines', machineId.replace(/[^A-Za-z0-9_-]/g, '_'));

/** Removes a machine's own ISO (its virtual CD was ejected: the next boot builds it again). */
export function removeMachineIso(isoDir: string, machineId: string): void {
  rmSync(machineIsoDir(isoDir, machineId), { recursive: true, force: true });
}
