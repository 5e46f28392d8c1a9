import { constants, existsSync, promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import { StepError } from './errors.js';
import type { Exec } from './exec.js';
import { MiB } from './units.js';

/**
 * Block devices as the kernel sees them (sysfs) and the few raw operations the steps need:
 * zeroing a range, checking a range reads back as zeros, re-reading a partition table,
 * refusing a disk that is in use. Works without udev (a bare installer has devtmpfs only).
 */
const SYS_CLASS_BLOCK = '/sys/class/block';
const SECTOR = 512;

export interface BlockDevice {
  /** The device node, symlinks resolved: /dev/sda. */
  path: string;
  /** The kernel's name: sda, nvme0n1, loop3. */
  name: string;
  sizeBytes: number;
}

export interface Partition {
  name: string;
  path: string;
  number: number;
  startBytes: number;
  sizeBytes: number;
}

/** The device at `path` (a node or a symlink to one); a StepError (disk) when it is not a block device. */
export async function describeBlockDevice(path: string): Promise<BlockDevice> {
  let real: string;
  try {
    real = await fsp.realpath(path);
    if (!(await fsp.stat(real)).isBlockDevice()) throw new Error('not a block device');
  } catch (e) {
    throw new StepError('disk', `${path}: ${(e as Error).message}`, { device: path });
  }
  const name = basename(real);
  return { path: real, name, sizeBytes: await sysfsSizeBytes(name) };
}

// NOTE: sysfs "size" and "start" count 512-byte sectors whatever the device's logical block size.
async function sysfsSizeBytes(name: string): Promise<number> {
  return Number((await fsp.readFile(`${SYS_CLASS_BLOCK}/${name}/size`, 'utf8')).trim()) * SECTOR;
}

/** The partitions the kernel currently knows on a disk, in on-disk order. */
export async function kernelPartitions(disk: BlockDevice): Promise<Partition[]> {
  const entries = await fsp.readdir(`${SYS_CLASS_BLOCK}/${disk.name}`);
  const parts: Partition[] = [];
  for (const entry of entries) {
    const dir = `${SYS_CLASS_BLOCK}/${disk.name}/${entry}`;
    if (!entry.startsWith(disk.name) || !existsSync(`${dir}/partition`)) continue;
    const [number, start, size] = await Promise.all(['partition', 'start', 'size'].map((f) => fsp.readFile(`${dir}/${f}`, 'utf8')));
    parts.push({ name: entry, path: `/dev/${entry}`, number: Number(number), startBytes: Number(start) * SECTOR, sizeBytes: Number(size) * SECTOR });
  }
  return parts.sort((a, b) => a.startBytes - b.startBytes);
}

/** A disk's partitions as the kernel knows them, each with the file system blkid finds on it (the console's partition screen). */
export async function partitionsOf(path: string, exec: Exec): Promise<(Partition & { filesystem: string | null; label: string | null })[]> {
  const parts = await kernelPartitions(await describeBlockDevice(path));
  return Promise.all(
    parts.map(async (p) => {
      const found = await probeSignatures(p.path, exec);
      return { ...p, filesystem: found?.['TYPE'] ?? null, label: found?.['LABEL'] ?? null };
    }),
  );
}

/** The partition table written on the disk (not the kernel's copy), read with partx. */
export async function onDiskPartitions(disk: BlockDevice, exec: Exec): Promise<{ number: number; startBytes: number; sizeBytes: number }[]> {
  // NOTE: partx exits 1 with "failed to read partition table" when the disk has none.
  const { stdout, exitCode } = await exec('partx', ['--show', '--bytes', '--noheadings', '--output', 'NR,START,SIZE', disk.path], { okExitCodes: [0, 1] });
  if (exitCode !== 0) return [];
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f.every((x) => /^\d+$/.test(x)))
    .map(([nr, start, size]) => ({ number: Number(nr), startBytes: Number(start) * SECTOR, sizeBytes: Number(size) }))
    .sort((a, b) => a.startBytes - b.startBytes);
}

/**
 * Makes the kernel's partitions those of the table on the disk, and waits for their device
 * nodes. Rejects (disk) when the kernel keeps a different view, e.g. a partition is in use.
 */
export async function syncPartitionTable(disk: BlockDevice, exec: Exec, log: (line: string) => void): Promise<Partition[]> {
  const wanted = await onDiskPartitions(disk, exec);
  // NOTE: the kernel sizes an MBR extended partition at 1 KiB (just its link to the first
  // logical one) where the table gives its whole extent.
  const same = (kernel: Partition[]) =>
    kernel.length === wanted.length &&
    kernel.every((p, i) => p.number === wanted[i]!.number && p.startBytes === wanted[i]!.startBytes && (p.sizeBytes === wanted[i]!.sizeBytes || p.sizeBytes <= 1024));
  // NOTE: `blockdev --rereadpt` (BLKRRPART) succeeds on loop devices of recent kernels without
  // changing anything; partprobe and partx add, resize and remove partitions one by one (BLKPG).
  // partprobe also warns "Not all of the space available ... appears to be used" after a small
  // image was written to a large disk: harmless, sgdisk -e fixes that afterwards.
  for (const [tool, args] of [
    ['partprobe', [disk.path]],
    ['partx', ['--update', disk.path]],
  ] as const) {
    try {
      await exec(tool, args);
    } catch (e) {
      log(`${disk.name}: ${(e as Error).message}`);
    }
    const kernel = await kernelPartitions(disk);
    if (same(kernel)) {
      await settleDeviceNodes(kernel, exec);
      return kernel;
    }
  }
  const kernel = await kernelPartitions(disk);
  const show = (ps: { number: number; startBytes: number; sizeBytes: number }[]) => ps.map((p) => `${p.number}@${p.startBytes}+${p.sizeBytes}`).join(' ') || 'none';
  throw new StepError('disk', `${disk.name}: the kernel did not take the new partition table (on disk: ${show(wanted)}; kernel: ${show(kernel)}); is a partition in use?`, {
    disk: disk.name,
  });
}

/** Waits until every partition has its /dev node (devtmpfs makes them; udev may re-make them). */
async function settleDeviceNodes(parts: Partition[], exec: Exec): Promise<void> {
  await exec('udevadm', ['settle', '--timeout=10']).catch(() => undefined);
  const deadline = Date.now() + 5000;
  while (!parts.every((p) => existsSync(p.path))) {
    if (Date.now() > deadline) throw new StepError('disk', `partition nodes did not appear: ${parts.filter((p) => !existsSync(p.path)).map((p) => p.path).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * What libblkid finds on a device by probing it directly (no cache): TYPE, LABEL, UUID for
 * a filesystem, PTTYPE for a partition table. null: no signature at all.
 */
export async function probeSignatures(path: string, exec: Exec): Promise<Record<string, string> | null> {
  // NOTE: blkid exits 2 when it finds nothing and 8 when it finds several signatures that
  // contradict each other ("ambivalent result"); both are answers, not failures.
  const { stdout, exitCode } = await exec('blkid', ['--probe', '--output', 'export', path], { okExitCodes: [0, 2, 8] });
  if (exitCode === 2) return null;
  if (exitCode === 8) return { TYPE: 'ambivalent (several signatures)' };
  const found: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) found[line.slice(0, i)] = line.slice(i + 1);
  }
  return found;
}

/**
 * Refuses (disk) to touch a disk that something on this machine uses: a mounted filesystem
 * or active swap on it or one of its partitions, or a device-mapper / md device built on it.
 */
export async function assertNotInUse(disk: BlockDevice): Promise<void> {
  const parts = await kernelPartitions(disk);
  const names = [disk.name, ...parts.map((p) => p.name)];
  const numbers = new Map<string, string>();
  for (const name of names) numbers.set((await fsp.readFile(`${SYS_CLASS_BLOCK}/${name}/dev`, 'utf8')).trim(), name);
  const users: string[] = [];
  const mountinfo = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const user = fields[2] !== undefined ? numbers.get(fields[2]) : undefined;
    if (user) users.push(`${user} is mounted at ${fields[4]}`);
  }
  const swaps = await fsp.readFile('/proc/swaps', 'utf8').catch(() => '');
  for (const line of swaps.split('\n').slice(1)) {
    const path = line.split(/\s+/)[0];
    if (path && names.includes(basename(path))) users.push(`${basename(path)} is in use as swap`);
  }
  for (const name of names) {
    const holders = await fsp.readdir(`${SYS_CLASS_BLOCK}/${name}/holders`).catch(() => [] as string[]);
    if (holders.length > 0) users.push(`${name} is held by ${holders.join(', ')}`);
  }
  if (users.length > 0) throw new StepError('disk', `${disk.name}: in use (${users.join('; ')}); refusing to write to it`, { disk: disk.name, users });
}

/** Bytes one discard request may cover; 0 when the device cannot discard. */
export async function discardMaxBytes(disk: BlockDevice): Promise<number> {
  const text = await fsp.readFile(`${SYS_CLASS_BLOCK}/${disk.name}/queue/discard_max_bytes`, 'utf8').catch(() => '0');
  return Number(text.trim()) || 0;
}

// NOTE: O_EXCL on a block device (without O_CREAT) is the kernel's "nobody else has it
// open exclusively" lock: it fails with EBUSY while a filesystem on the disk is mounted.
export const EXCLUSIVE_WRITE = constants.O_WRONLY | constants.O_EXCL;
/** The same, for a writer that reads the disk too (a differential image write). */
export const EXCLUSIVE_READ_WRITE = constants.O_RDWR | constants.O_EXCL;

const ZERO_CHUNK = 4 * MiB;
let zeroes: Buffer | null = null;
const zeroBuffer = () => (zeroes ??= Buffer.alloc(ZERO_CHUNK));

/** Writes zeros over [start, start + length) and syncs; `onProgress` gets the bytes zeroed so far. */
export async function zeroRange(path: string, start: number, length: number, onProgress?: (done: number) => void): Promise<void> {
  const fh = await fsp.open(path, EXCLUSIVE_WRITE);
  try {
    let done = 0;
    while (done < length) {
      const n = Math.min(ZERO_CHUNK, length - done);
      const { bytesWritten } = await fh.write(zeroBuffer(), 0, n, start + done);
      if (bytesWritten <= 0) throw new Error(`short write at byte ${start + done}`);
      done += bytesWritten;
      onProgress?.(done);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The offset of the first non-zero byte in [start, start + length), or null when it is all
 * zeros. The caller drops the page cache first (dropCachedPages) so that this reads the device.
 */
export async function firstNonZeroByte(path: string, start: number, length: number): Promise<number | null> {
  const fh = await fsp.open(path, 'r');
  const buf = Buffer.allocUnsafe(ZERO_CHUNK);
  try {
    let done = 0;
    while (done < length) {
      const n = Math.min(ZERO_CHUNK, length - done);
      const { bytesRead } = await fh.read(buf, 0, n, start + done);
      if (bytesRead <= 0) throw new Error(`could not read at byte ${start + done}`);
      if (!buf.subarray(0, bytesRead).equals(zeroBuffer().subarray(0, bytesRead))) {
        const i = buf.subarray(0, bytesRead).findIndex((b) => b !== 0);
        return start + done + i;
      }
      done += bytesRead;
    }
    return null;
  } finally {
    await fh.close();
  }
}

/** Writes back and forgets the kernel's cached pages of a device, so later reads hit the device. */
export async function dropCachedPages(path: string, exec: Exec): Promise<void> {
  await exec('blockdev', ['--flushbufs', path]);
}
