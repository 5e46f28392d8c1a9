import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { checkDiskLayout, type DiskLayout, type Filesystem } from '../../protocol/disk-layout.js';
import { assertNotInUse, describeBlockDevice, syncPartitionTable, type BlockDevice } from './block-device.js';
import { StepError } from './errors.js';
import { ToolError, type Exec } from './exec.js';
import type { CandidateDisk } from './root-disk.js';
import { eraseSignatures } from './wipe.js';

/**
 * Applies a disk layout (src/protocol/disk-layout.ts) with the standard tools: sgdisk for
 * the GPT partitions, mdadm for the arrays, LVM for volume groups, mkfs and mkswap; then
 * mounts the file systems under a target directory in mount order, where a tree is copied,
 * and says what the installed system's fstab and mdadm.conf hold. Everything a previous
 * life left (arrays the kernel assembled, signatures on the disks and on the new partitions,
 * at the same offsets when the layout is the same) is stopped or erased first.
 */
export interface LayoutOptions {
  log: (line: string) => void;
  exec: Exec;
  /** Where the disks' device nodes are. Default /dev. */
  devDir?: string;
}

/** A block device the layout made, by its id. */
export interface MadeDevice {
  id: string;
  path: string;
  use: string;
  fs?: Filesystem;
  mount?: string;
  uuid?: string;
}

export interface AppliedLayout {
  /** Layout disk index → the disk it was applied to. */
  disks: { name: string; path: string; sizeBytes: number }[];
  devices: MadeDevice[];
  /** Disks with a BIOS boot partition: GRUB for BIOS goes on each. */
  biosBootDisks: string[];
  /** Every EFI system partition's mount point, the first being /boot/efi. */
  efiMounts: string[];
  /** `ARRAY` lines for mdadm.conf (empty without arrays). */
  mdadmArrays: string[];
  /** The device mounted at /, and its file system. */
  root: MadeDevice;
}

/** GPT type codes (sgdisk) per use. */
const TYPE_CODE: Record<string, string> = { fs: '8300', swap: '8200', raid: 'FD00', lvm: '8E00', 'bios-boot': 'EF02', efi: 'EF00' };

/** The disk each layout disk goes to: named ones by name, the others the remaining disks, smallest first. */
export function assignDisks(layout: DiskLayout, disks: CandidateDisk[]): CandidateDisk[] {
  const byName = new Map(disks.map((d) => [d.name, d]));
  const taken = new Set(layout.disks.flatMap((d) => (d.device ? [d.device] : [])));
  const free = disks.filter((d) => !taken.has(d.name)).sort((a, b) => a.sizeBytes - b.sizeBytes || a.name.localeCompare(b.name));
  return layout.disks.map((d, i) => {
    const disk = d.device ? byName.get(d.device) : free.shift();
    if (!disk) {
      const known = disks.map((x) => x.name).join(', ') || 'none';
      throw new StepError('disk', d.device ? `diskLayout.disks[${i}].device: this machine has no disk ${d.device} (disks: ${known})` : `diskLayout.disks[${i}]: no disk left for it (disks: ${known})`, { field: `diskLayout.disks[${i}]` });
    }
    const need = d.partitions.reduce((n, p) => n + (p.sizeMiB ?? 1), 0) * 2 ** 20 + 2 * 2 ** 20;
    if (disk.sizeBytes < need) throw new StepError('disk', `diskLayout.disks[${i}]: ${disk.name} (${disk.sizeBytes} bytes) is smaller than its partitions`, { field: `diskLayout.disks[${i}]`, disk: disk.name });
    return disk;
  });
}

/** The partition device of a disk: vda → vda1, nvme0n1 → nvme0n1p1, loop3 → loop3p1. */
export function partitionPath(diskPath: string, n: number): string {
  return /\d$/.test(diskPath) ? `${diskPath}p${n}` : `${diskPath}${n}`;
}

async function tool(exec: Exec, command: string, args: string[], timeoutMs = 600_000): Promise<string> {
  try {
    return (await exec(command, args, { timeoutMs })).stdout;
  } catch (e) {
    if (e instanceof ToolError && e.reason === 'missing') throw new StepError('tool', `${command} is not installed in the installer`, { command });
    if (e instanceof ToolError) throw new StepError('disk', `${command} ${args.join(' ')}: ${e.stderr.trim() || e.message}`, { command });
    throw e;
  }
}

async function has(exec: Exec, command: string): Promise<boolean> {
  try {
    await exec('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/** Stops arrays and volume groups an earlier install left assembled on these disks, so they can be rewritten. */
async function releaseOldDevices(exec: Exec, log: (l: string) => void): Promise<void> {
  if (await has(exec, 'vgchange')) await exec('vgchange', ['-an'], { okExitCodes: [0, 5] }).catch(() => undefined);
  if (await has(exec, 'mdadm')) {
    const before = await fsp.readFile('/proc/mdstat', 'utf8').catch(() => '');
    if (/^md\S* : /m.test(before)) {
      log('layout: stopping the arrays the kernel assembled from an earlier install');
      await exec('mdadm', ['--stop', '--scan'], { okExitCodes: [0, 1] });
    }
  }
}

async function makeFilesystem(exec: Exec, d: MadeDevice, label: string | undefined): Promise<void> {
  const l = (flag: string) => (label ? [flag, label] : []);
  if (d.use === 'swap') await tool(exec, 'mkswap', [...l('-L'), d.path]);
  else if (d.fs === 'ext4') await tool(exec, 'mkfs.ext4', ['-F', '-q', ...l('-L'), d.path]);
  else if (d.fs === 'xfs') await tool(exec, 'mkfs.xfs', ['-f', '-q', ...l('-L'), d.path]);
  else if (d.fs === 'btrfs') await tool(exec, 'mkfs.btrfs', ['-f', '-q', ...l('-L'), d.path]);
  else if (d.fs === 'vfat') await tool(exec, 'mkfs.vfat', ['-F', '32', ...l('-n'), d.path]);
  if (d.use === 'swap' || d.fs) d.uuid = (await tool(exec, 'blkid', ['--probe', '--match-tag', 'UUID', '--output', 'value', d.path])).trim();
}

/** Lays out the disks and makes every array, volume and file system; nothing is mounted yet. */
export async function applyDiskLayout(layout: DiskLayout, disks: CandidateDisk[], options: LayoutOptions): Promise<AppliedLayout> {
  const problem = checkDiskLayout(layout, 'params.diskLayout');
  if (problem) throw new StepError('params', `${problem.field} ${problem.message}`, { field: problem.field });
  const { exec, log } = options;
  const devDir = options.devDir ?? '/dev';
  const assigned = assignDisks(layout, disks);
  await releaseOldDevices(exec, log);
  const devices: MadeDevice[] = [];
  const labels = new Map<string, string | undefined>();
  const biosBootDisks: string[] = [];
  const applied: BlockDevice[] = [];
  for (const [i, d] of layout.disks.entries()) {
    const disk = await describeBlockDevice(`${devDir}/${assigned[i]!.name}`);
    await assertNotInUse(disk);
    await eraseSignatures(disk, exec);
    await tool(exec, 'sgdisk', ['--zap-all', disk.path]);
    const args = d.partitions.flatMap((p, n) => [
      `--new=${n + 1}:0:${p.sizeMiB === undefined ? '0' : `+${p.sizeMiB}M`}`,
      `--typecode=${n + 1}:${TYPE_CODE[p.use]}`,
      `--change-name=${n + 1}:${p.id}`,
    ]);
    await tool(exec, 'sgdisk', [...args, disk.path]);
    const parts = await syncPartitionTable(disk, exec, log);
    for (const [n, p] of d.partitions.entries()) {
      const path = parts.find((x) => x.number === n + 1)?.path ?? partitionPath(disk.path, n + 1);
      // A partition at the offsets of an earlier one still carries its signatures (an md superblock, a file system).
      await exec('wipefs', ['--all', path]);
      const fs = p.use === 'efi' ? 'vfat' : p.fs;
      const mount = p.use === 'efi' ? (p.mount ?? '/boot/efi') : p.mount;
      devices.push({ id: p.id, path, use: p.use, ...(fs ? { fs } : {}), ...(mount ? { mount } : {}) });
      labels.set(p.id, p.label);
      if (p.use === 'bios-boot' && !biosBootDisks.includes(disk.path)) biosBootDisks.push(disk.path);
    }
    applied.push(disk);
    log(`layout: ${disk.name}: ${d.partitions.map((p) => `${p.id} (${p.use}${p.sizeMiB ? `, ${p.sizeMiB} MiB` : ', the rest'})`).join(', ')}`);
  }
  const byId = (id: string) => devices.find((x) => x.id === id)!;
  const mdadmArrays: string[] = [];
  for (const [n, raid] of (layout.raid ?? []).entries()) {
    const path = `${devDir}/md${n}`;
    const members = raid.members.map((m) => byId(m).path);
    // --homehost=any: the installed system (another host name) assembles it under its own name, not as md127.
    await tool(exec, 'mdadm', ['--create', path, '--run', '--metadata=1.2', `--level=${raid.level}`, `--raid-devices=${members.length}`, `--name=${raid.id}`, '--homehost=any', ...members], 3_600_000);
    devices.push({ id: raid.id, path, use: raid.use, ...(raid.fs ? { fs: raid.fs } : {}), ...(raid.mount ? { mount: raid.mount } : {}) });
    labels.set(raid.id, raid.label);
    const scan = (await tool(exec, 'mdadm', ['--detail', '--brief', path])).trim();
    mdadmArrays.push(scan);
    log(`layout: ${path}: RAID${raid.level} of ${members.join(', ')}`);
  }
  for (const vg of layout.volumeGroups ?? []) {
    const pvs = vg.pvs.map((p) => byId(p).path);
    for (const pv of pvs) await tool(exec, 'pvcreate', ['-ff', '-y', pv]);
    await tool(exec, 'vgcreate', ['-y', vg.id, ...pvs]);
    for (const lv of vg.volumes) {
      await tool(exec, 'lvcreate', ['-y', '-W', 'y', '-Z', 'y', '-n', lv.id, ...(lv.sizeMiB ? ['-L', `${lv.sizeMiB}m`] : ['-l', '100%FREE']), vg.id]);
      devices.push({ id: lv.id, path: `${devDir}/${vg.id}/${lv.id}`, use: lv.use, ...(lv.fs ? { fs: lv.fs } : {}), ...(lv.mount ? { mount: lv.mount } : {}) });
      labels.set(lv.id, lv.label);
    }
    log(`layout: volume group ${vg.id} on ${pvs.join(', ')}: ${vg.volumes.map((v) => v.id).join(', ')}`);
  }
  for (const d of devices) await makeFilesystem(exec, d, labels.get(d.id));
  const root = devices.find((d) => d.mount === '/')!;
  const efiMounts = devices.filter((d) => d.use === 'efi').map((d) => d.mount!);
  return { disks: applied.map((d) => ({ name: d.name, path: d.path, sizeBytes: d.sizeBytes })), devices, biosBootDisks, efiMounts, mdadmArrays, root };
}

/** Mount points in the order they are mounted (parents first). */
export function mountOrder(devices: MadeDevice[]): MadeDevice[] {
  return devices.filter((d) => d.mount && d.fs).sort((a, b) => a.mount!.split('/').filter(Boolean).length - b.mount!.split('/').filter(Boolean).length || a.mount!.localeCompare(b.mount!));
}

/** Mounts every file system of the layout under `target`; the unmount undoes it in reverse, and never throws. */
export async function mountLayout(applied: AppliedLayout, target: string, exec: Exec): Promise<() => Promise<void>> {
  const mounted: string[] = [];
  const unmount = async () => {
    for (const dir of mounted.reverse()) await exec('umount', [dir]).catch(() => exec('umount', ['-l', dir]).catch(() => undefined));
    mounted.length = 0;
  };
  try {
    for (const d of mountOrder(applied.devices)) {
      const dir = join(target, d.mount!);
      await fsp.mkdir(dir, { recursive: true });
      await tool(exec, 'mount', ['-t', d.fs!, d.path, dir]);
      mounted.push(dir);
    }
  } catch (e) {
    await unmount();
    throw e;
  }
  return unmount;
}

/** The installed system's /etc/fstab: every file system and swap by UUID. */
export function fstabOf(applied: AppliedLayout): string {
  const lines = ['# Written by Plinth from the disk layout: file systems by UUID.', '# <file system> <mount point> <type> <options> <dump> <pass>'];
  for (const d of mountOrder(applied.devices)) {
    const options = d.mount === '/' ? 'errors=remount-ro' : d.fs === 'vfat' ? 'umask=0077' : 'defaults';
    const pass = d.mount === '/' ? 1 : d.fs === 'btrfs' || d.fs === 'xfs' ? 0 : 2;
    lines.push(`UUID=${d.uuid} ${d.mount} ${d.fs} ${options} 0 ${pass}`);
  }
  for (const d of applied.devices.filter((x) => x.use === 'swap')) lines.push(`UUID=${d.uuid} none swap sw 0 0`);
  return `${lines.join('\n')}\n`;
}

/** The installed system's mdadm.conf: the arrays by UUID, so its initramfs assembles them whatever the host's name. */
export function mdadmConfOf(applied: AppliedLayout): string {
  return ['# Written by Plinth from the disk layout.', 'HOMEHOST <ignore>', 'MAILADDR root', ...applied.mdadmArrays, ''].join('\n');
}
