import {
  assertNotInUse,
  describeBlockDevice,
  discardMaxBytes,
  dropCachedPages,
  firstNonZeroByte,
  kernelPartitions,
  probeSignatures,
  syncPartitionTable,
  zeroRange,
  type BlockDevice,
} from './block-device.js';
import { StepError } from './errors.js';
import { nodeExec, ToolError, type Exec } from './exec.js';
import { detectSecureErase, runSecureErase } from './secure-erase.js';
import { formatBytes, formatRate, MiB } from './units.js';

/**
 * Erases disks so that the next tenant finds nothing of the last one.
 *
 * quick: removes what makes data findable. Every signature libblkid knows (partition
 *   tables, filesystems, RAID and LVM labels) goes, on every partition and on the disk; the
 *   device discards everything where it can; the first and last 64 MiB are zeroed (the
 *   whole disk when it is smaller). Verified: those ranges read back as zeros (from the
 *   device, not the page cache) and blkid finds no signature and no partition table.
 *
 * full: destroys the data. The drive's own secure erase where it has a usable one (NVMe
 *   Format with user data erase; ATA security erase when not frozen), else every byte is
 *   overwritten with zeros. A secure erase leaves the drive's own pattern, so the first and
 *   last 64 MiB are zeroed after it, and verified like a quick wipe; an overwrite is
 *   verified by reading back 64 MiB at each end and 1 MiB samples spread over the disk.
 *
 * Disks are wiped side by side (each is its own I/O); a failure names its disk and the
 * others still finish.
 */
export type WipeMode = 'quick' | 'full';

export interface WipeOptions {
  /** By kernel name (sda, nvme0n1), as inspection reports them. */
  disks: readonly { name: string }[];
  mode: WipeMode;
  log: (line: string) => void;
  onProgress?: (progress: { disk: string; bytesDone: number; totalBytes: number }) => void;
  exec?: Exec;
  /** Where the device nodes are. Default /dev. */
  devDir?: string;
}

export type WipeMethod = 'quick' | 'nvme-format' | 'ata-secure-erase' | 'ata-enhanced-secure-erase' | 'zero-fill';

export interface DiskWipeResult {
  disk: string;
  device: string;
  method: WipeMethod;
  /** Whether the device discarded its blocks (quick). */
  discarded: boolean;
  /** Bytes the method covered: erased by the drive, or overwritten with zeros. */
  bytes: number;
  seconds: number;
  /** What the read-back checked. */
  verified: string;
}

/** Quick wipe's zeroed ends: covers GPT copies, RAID superblocks and LVM labels at either end. */
export const END_BYTES = 64 * MiB;
const SAMPLE_BYTES = MiB;
const SAMPLES = 64;

export async function wipeDisks(options: WipeOptions): Promise<DiskWipeResult[]> {
  const exec = options.exec ?? nodeExec();
  const devDir = options.devDir ?? '/dev';
  if (options.disks.length === 0) throw new StepError('disk', 'no disks to wipe: inspection found none', { disks: [] });
  const outcomes = await Promise.allSettled(options.disks.map((d) => wipeOne(`${devDir}/${d.name}`, d.name, options, exec)));
  const results = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const failures = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ disk: options.disks[i]!.name, error: o.reason as unknown }] : []));
  if (failures.length > 0) {
    const messages = failures.map(({ disk, error }) => {
      const message = error instanceof Error ? error.message : String(error);
      return message.startsWith(`${disk}:`) ? message : `${disk}: ${message}`;
    });
    throw new StepError('disk', messages.join('; '), { failed: failures.map((f) => f.disk), results });
  }
  return results;
}

async function wipeOne(path: string, name: string, options: WipeOptions, exec: Exec): Promise<DiskWipeResult> {
  const log = (line: string) => options.log(`${name}: ${line}`);
  const started = performance.now();
  const disk = await describeBlockDevice(path);
  await assertNotInUse(disk);
  log(`${options.mode} wipe of ${disk.path} (${formatBytes(disk.sizeBytes)})`);
  let result: Omit<DiskWipeResult, 'seconds'>;
  try {
    result = options.mode === 'quick' ? await quickWipe(disk, log, exec) : await fullWipe(disk, log, exec, options.onProgress);
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError('disk', `${name}: ${(e as Error).message}`, { disk: name }, { cause: e });
  }
  const seconds = (performance.now() - started) / 1000;
  log(`wiped by ${result.method} in ${seconds.toFixed(1)} s; verified: ${result.verified}`);
  return { ...result, seconds };
}

async function quickWipe(disk: BlockDevice, log: (line: string) => void, exec: Exec): Promise<Omit<DiskWipeResult, 'seconds'>> {
  await eraseSignatures(disk, exec);
  // Discard before zeroing: a device may read discarded blocks back as anything, and the
  // zeroed ends must stay zeros.
  let discarded = false;
  if ((await discardMaxBytes(disk)) > 0) {
    try {
      await exec('blkdiscard', [disk.path], { timeoutMs: 3600_000 });
      discarded = true;
    } catch (e) {
      log(`discard failed, carrying on without it: ${(e as Error).message}`);
    }
  }
  const ends = endRanges(disk);
  for (const [start, length] of ends) await zeroRange(disk.path, start, length);
  await syncPartitionTable(disk, exec, log);
  const verified = await verifyBlank(disk, ends, exec);
  return { disk: disk.name, device: disk.path, method: 'quick', discarded, bytes: ends.reduce((n, [, l]) => n + l, 0), verified };
}

async function fullWipe(
  disk: BlockDevice,
  log: (line: string) => void,
  exec: Exec,
  onProgress: WipeOptions['onProgress'],
): Promise<Omit<DiskWipeResult, 'seconds'>> {
  const { method, reason } = await detectSecureErase(disk, exec).catch((e: Error) => ({ method: null, reason: e.message }));
  if (method !== null) {
    log(`erasing with ${reason}`);
    try {
      await runSecureErase(disk, method, exec, log);
      const ends = endRanges(disk);
      for (const [start, length] of ends) await zeroRange(disk.path, start, length);
      await syncPartitionTable(disk, exec, log);
      const verified = await verifyBlank(disk, ends, exec);
      const kind: WipeMethod = method.kind === 'nvme-format' ? 'nvme-format' : method.enhanced ? 'ata-enhanced-secure-erase' : 'ata-secure-erase';
      return { disk: disk.name, device: disk.path, method: kind, discarded: false, bytes: disk.sizeBytes, verified };
    } catch (e) {
      log(`${reason} failed, overwriting with zeros instead: ${(e as Error).message}`);
    }
  } else {
    log(`no usable secure erase (${reason}); overwriting every byte with zeros`);
  }

  const started = performance.now();
  let lastTenth = 0;
  let lastReport = 0;
  await zeroRange(disk.path, 0, disk.sizeBytes, (done) => {
    const tenth = Math.floor((done * 10) / disk.sizeBytes);
    if (tenth > lastTenth && tenth < 10) {
      lastTenth = tenth;
      log(`zero-fill ${tenth * 10}% (${formatBytes(done)} of ${formatBytes(disk.sizeBytes)}, ${formatRate(done, (performance.now() - started) / 1000)})`);
    }
    const now = performance.now();
    if (onProgress && (now - lastReport >= 1000 || done === disk.sizeBytes)) {
      lastReport = now;
      onProgress({ disk: disk.name, bytesDone: done, totalBytes: disk.sizeBytes });
    }
  });
  await syncPartitionTable(disk, exec, log);
  const verified = await verifyBlank(disk, [...endRanges(disk), ...sampleRanges(disk)], exec);
  return { disk: disk.name, device: disk.path, method: 'zero-fill', discarded: false, bytes: disk.sizeBytes, verified };
}

/** wipefs on every partition the kernel knows, then on the disk itself. */
export async function eraseSignatures(disk: BlockDevice, exec: Exec): Promise<void> {
  for (const part of await kernelPartitions(disk)) await wipefs(part.path, exec);
  await wipefs(disk.path, exec);
}

async function wipefs(path: string, exec: Exec): Promise<void> {
  try {
    await exec('wipefs', ['--all', path]);
  } catch (e) {
    if (e instanceof ToolError && e.reason === 'missing') throw new StepError('tool', 'wipefs is not installed in the installer', { command: 'wipefs' });
    throw e;
  }
}

/** The first and last END_BYTES, or the whole disk as one range when they would overlap. */
function endRanges(disk: BlockDevice): [number, number][] {
  if (disk.sizeBytes <= 2 * END_BYTES) return [[0, disk.sizeBytes]];
  return [
    [0, END_BYTES],
    [disk.sizeBytes - END_BYTES, END_BYTES],
  ];
}

/** SAMPLES ranges of SAMPLE_BYTES spread evenly between the ends. */
function sampleRanges(disk: BlockDevice): [number, number][] {
  if (disk.sizeBytes <= 2 * END_BYTES + SAMPLE_BYTES) return [];
  const span = disk.sizeBytes - 2 * END_BYTES - SAMPLE_BYTES;
  return Array.from({ length: SAMPLES }, (_, i): [number, number] => [END_BYTES + Math.floor((span * (i + 0.5)) / SAMPLES / 512) * 512, SAMPLE_BYTES]);
}

/** Reads the ranges back from the device and probes for signatures; throws (disk) on anything found. */
async function verifyBlank(disk: BlockDevice, ranges: [number, number][], exec: Exec): Promise<string> {
  await dropCachedPages(disk.path, exec);
  for (const [start, length] of ranges) {
    const at = await firstNonZeroByte(disk.path, start, length);
    if (at !== null) throw new StepError('disk', `${disk.name}: verification failed: byte ${at} is not zero after the wipe`, { disk: disk.name, offset: at });
  }
  const signatures = await probeSignatures(disk.path, exec);
  if (signatures !== null) {
    throw new StepError('disk', `${disk.name}: verification failed: blkid still finds ${Object.entries(signatures).map(([k, v]) => `${k}=${v}`).join(' ')}`, { disk: disk.name, signatures });
  }
  const bytes = ranges.reduce((n, [, l]) => n + l, 0);
  return `${formatBytes(bytes)} in ${ranges.length} range(s) read back as zeros; no signature or partition table`;
}
