import { describeBlockDevice, probeSignatures, syncPartitionTable, type Partition } from './block-device.js';
import { StepError } from './errors.js';
import { nodeExec, ToolError, type Exec } from './exec.js';
import { withMounted } from './mount.js';
import { findRootFilesystem } from './root-filesystem.js';
import { formatBytes } from './units.js';

/**
 * Makes a freshly written image use its whole disk: the GPT's backup header moves to the
 * disk's end, the last partition grows to fill the disk, and its filesystem grows with it.
 *
 * Only the last partition can grow, so that is the one grown. The root filesystem is
 * expected to be there (see root-filesystem.ts); when the image's root is elsewhere, the
 * last partition still grows and the result says which filesystem that was.
 */
export interface GrowRootOptions {
  log: (line: string) => void;
  exec?: Exec;
}

export interface GrowRootResult {
  disk: string;
  partition: string;
  partitionNumber: number;
  /** What the grown partition holds: ext4, xfs, or what blkid said ("unknown" for nothing). */
  filesystem: string;
  /** True when the grown partition holds the image's root filesystem. */
  isRoot: boolean;
  partitionBytes: { before: number; after: number };
  /** Filesystem size, where the agent can read it (ext4). */
  filesystemBytes: { before: number; after: number } | null;
}

export async function growRoot(device: string, options: GrowRootOptions): Promise<GrowRootResult> {
  const exec = options.exec ?? nodeExec();
  const log = options.log;
  const disk = await describeBlockDevice(device);
  const table = (await probeSignatures(disk.path, exec))?.['PTTYPE'];
  if (table !== 'gpt' && table !== 'dos') throw new StepError('image', `${disk.name}: the written image has no partition table (blkid found ${table ?? 'nothing'})`, { disk: disk.name });

  if (table === 'gpt') {
    // The image's backup GPT sits at the end of the image, not of the disk: firmware and
    // partitioning tools expect it at the disk's last sector, and growpart needs the room.
    await tool(exec, 'sgdisk', ['--move-second-header', disk.path], disk.name);
  }
  const before = await syncPartitionTable(disk, exec, log);
  const last = before.at(-1);
  if (!last) throw new StepError('image', `${disk.name}: the written image has no partitions`, { disk: disk.name });
  const root = await findRootFilesystem(disk, before, exec);
  const isRoot = root.partition.number === last.number;
  if (!isRoot) log(`grow-root: the root filesystem is on ${root.partition.name}, not on the last partition ${last.name}; growing ${last.name} anyway`);
  const filesystem = isRoot ? root.type : ((await probeSignatures(last.path, exec))?.['TYPE'] ?? 'unknown');
  const fsBefore = filesystem === 'ext4' ? await ext4Bytes(last.path, exec) : null;

  // NOTE: growpart exits 1 with "NOCHANGE" when the partition already ends at the disk's end
  // (the image was as large as the disk): nothing to do, not a failure.
  const grown = await tool(exec, 'growpart', [disk.path, String(last.number)], disk.name, [0, 1]);
  if (grown.exitCode === 1 && !/NOCHANGE/.test(grown.stdout + grown.stderr)) {
    throw new StepError('disk', `${disk.name}: growpart ${disk.path} ${last.number} failed: ${(grown.stdout + grown.stderr).trim()}`, { disk: disk.name });
  }
  const after = await syncPartitionTable(disk, exec, log);
  const lastAfter = after.find((p) => p.number === last.number) as Partition;
  log(`grow-root: ${last.name} ${formatBytes(last.sizeBytes)} → ${formatBytes(lastAfter.sizeBytes)} (disk ${formatBytes(disk.sizeBytes)})`);

  const fsAfter = await growFilesystem(lastAfter, filesystem, disk.name, { log, exec });
  if (fsAfter !== null) log(`grow-root: ext4 on ${lastAfter.name} ${formatBytes(fsBefore ?? 0)} → ${formatBytes(fsAfter)}`);
  return {
    disk: disk.name,
    partition: lastAfter.path,
    partitionNumber: lastAfter.number,
    filesystem,
    isRoot,
    partitionBytes: { before: last.sizeBytes, after: lastAfter.sizeBytes },
    filesystemBytes: fsBefore !== null && fsAfter !== null ? { before: fsBefore, after: fsAfter } : null,
  };
}

/**
 * Grows the file system on a partition to the partition's size: ext4 checked then resized
 * unmounted, xfs grown mounted (the only way it grows); anything else is left as it is (said
 * in the log). The ext4 size after, else null.
 */
export async function growFilesystem(partition: Pick<Partition, 'name' | 'path'>, filesystem: string, disk: string, o: { log: (line: string) => void; exec: Exec }): Promise<number | null> {
  const { exec, log } = o;
  if (filesystem === 'ext4') {
    // NOTE: resize2fs refuses an unmounted filesystem that was not checked since it was last
    // mounted ("Please run e2fsck -f first"). e2fsck -p exits 1 when it fixed something harmless.
    const check = await tool(exec, 'e2fsck', ['-f', '-p', partition.path], disk, [0, 1, 2, 4, 8]);
    if (check.exitCode >= 4) throw new StepError('image', `${partition.name}: the image's filesystem has errors e2fsck could not fix: ${(check.stdout + check.stderr).trim().split('\n').slice(-3).join(' / ')}`, { partition: partition.name });
    await tool(exec, 'resize2fs', [partition.path], disk);
    return ext4Bytes(partition.path, exec);
  }
  if (filesystem === 'xfs') {
    // xfs grows only while mounted.
    await withMounted(partition.path, 'xfs', exec, (dir) => tool(exec, 'xfs_growfs', [dir], disk));
    log(`grow: xfs on ${partition.name} grown`);
  } else log(`grow: ${partition.name} holds ${filesystem}; its partition is as large as it is, its content was left as it is`);
  return null;
}

/** Runs a tool; its failure becomes a StepError: tool when it is missing, disk otherwise. */
async function tool(exec: Exec, command: string, args: string[], disk: string, okExitCodes: number[] = [0]) {
  try {
    return await exec(command, args, { okExitCodes, timeoutMs: 600_000 });
  } catch (e) {
    if (e instanceof ToolError && e.reason === 'missing') throw new StepError('tool', `${command} is not installed in the installer`, { command });
    throw new StepError('disk', `${disk}: ${(e as Error).message}`, { disk }, { cause: e });
  }
}

/** The size of an ext4 filesystem from its superblock. */
export async function ext4Bytes(partition: string, exec: Exec): Promise<number> {
  const { stdout } = await exec('dumpe2fs', ['-h', partition]);
  const blocks = /^Block count:\s+(\d+)/m.exec(stdout);
  const size = /^Block size:\s+(\d+)/m.exec(stdout);
  if (!blocks || !size) throw new StepError('disk', `${partition}: dumpe2fs -h shows no block count or block size`, { partition });
  return Number(blocks[1]) * Number(size[1]);
}
