/**
 * The raw disk of an image: a sparse file with a GPT that boots on both firmware kinds.
 *
 *   1  bios-boot   1 MiB    EF02  GRUB's core image for BIOS (GPT has no gap after the MBR)
 *   2  efi-system  200 MiB  EF00  FAT32; \EFI\BOOT\BOOTX64.EFI for UEFI
 *   3  root        rest     8304  ext4; last, so that it can grow to fill a larger disk
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import type { ManifestPartition } from './options.js';
import { MiB } from './options.js';
import { detachLoopDevice } from './host-state.js';
import { runProcess } from './process.js';
import type { Held, Teardown } from './teardown.js';

type Log = (line: string) => void;
interface Ctx {
  log: Log;
  signal?: AbortSignal | undefined;
}

const SECTOR = 512;

export const PARTITIONS = {
  biosBoot: { number: 1, name: 'bios-boot', typeCode: 'EF02', sizeBytes: 1 * MiB },
  esp: { number: 2, name: 'efi-system', typeCode: 'EF00', sizeBytes: 200 * MiB, label: 'ESP' },
  root: { number: 3, name: 'root', typeCode: '8304', label: 'plinth-root' },
} as const;

/**
 * The ext4 features of Debian 12's own mke2fs defaults, spelled out so that a newer host
 * e2fsprogs cannot add one (orphan_file, metadata_csum_seed...) that the image's GRUB 2.06
 * or its fsck does not know.
 */
export const ROOT_EXT4_FEATURES =
  'none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum';

export interface DiskIdentity {
  diskGuid: string;
  partUuids: { biosBoot: string; esp: string; root: string };
  rootFsUuid: string;
  /** FAT volume id as blkid and fstab show it: XXXX-XXXX. */
  espVolumeId: string;
}

export function newDiskIdentity(): DiskIdentity {
  const volume = randomBytes(4).toString('hex').toUpperCase();
  return {
    diskGuid: randomUUID(),
    partUuids: { biosBoot: randomUUID(), esp: randomUUID(), root: randomUUID() },
    rootFsUuid: randomUUID(),
    espVolumeId: `${volume.slice(0, 4)}-${volume.slice(4)}`,
  };
}

export function createSparseFile(path: string, sizeBytes: number): void {
  const fd = openSync(path, 'wx');
  try {
    ftruncateSync(fd, sizeBytes);
  } finally {
    closeSync(fd);
  }
}

export function sgdiskArguments(identity: DiskIdentity): string[] {
  const { biosBoot, esp, root } = PARTITIONS;
  const espStart = 2 * MiB;
  return [
    '--clear',
    '--set-alignment=2048',
    `--disk-guid=${identity.diskGuid}`,
    `--new=${biosBoot.number}:${MiB / SECTOR}:+${biosBoot.sizeBytes / MiB}M`,
    `--typecode=${biosBoot.number}:${biosBoot.typeCode}`,
    `--change-name=${biosBoot.number}:${biosBoot.name}`,
    `--partition-guid=${biosBoot.number}:${identity.partUuids.biosBoot}`,
    `--new=${esp.number}:${espStart / SECTOR}:+${esp.sizeBytes / MiB}M`,
    `--typecode=${esp.number}:${esp.typeCode}`,
    `--change-name=${esp.number}:${esp.name}`,
    `--partition-guid=${esp.number}:${identity.partUuids.esp}`,
    // 0:0 — from the first free aligned sector to the end of the disk.
    `--new=${root.number}:0:0`,
    `--typecode=${root.number}:${root.typeCode}`,
    `--change-name=${root.number}:${root.name}`,
    `--partition-guid=${root.number}:${identity.partUuids.root}`,
  ];
}

export async function partitionDisk(path: string, identity: DiskIdentity, ctx: Ctx): Promise<void> {
  await runProcess('sgdisk', [...sgdiskArguments(identity), path], ctx);
}

/** Start and size of each partition, read back from the table sgdisk wrote. */
export function parsePartitionTable(sgdiskPrint: string): Map<number, { startBytes: number; sizeBytes: number }> {
  const rows = new Map<number, { startBytes: number; sizeBytes: number }>();
  for (const line of sgdiskPrint.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s/.exec(line);
    if (!m) continue;
    const start = Number(m[2]);
    const end = Number(m[3]);
    rows.set(Number(m[1]), { startBytes: start * SECTOR, sizeBytes: (end - start + 1) * SECTOR });
  }
  return rows;
}

export async function describePartitions(path: string, identity: DiskIdentity, ctx: Ctx): Promise<ManifestPartition[]> {
  const { stdout } = await runProcess('sgdisk', ['--print', path], { ...ctx, capture: true });
  const table = parsePartitionTable(stdout);
  const extent = (n: number) => {
    const row = table.get(n);
    if (!row) throw new PlinthError('internal', `partition ${n} missing from the table sgdisk wrote`);
    return row;
  };
  const { biosBoot, esp, root } = PARTITIONS;
  return [
    { number: biosBoot.number, name: biosBoot.name, typeCode: biosBoot.typeCode, partUuid: identity.partUuids.biosBoot, ...extent(biosBoot.number), filesystem: 'none', label: null, fsUuid: null, mountPoint: null },
    { number: esp.number, name: esp.name, typeCode: esp.typeCode, partUuid: identity.partUuids.esp, ...extent(esp.number), filesystem: 'vfat', label: esp.label, fsUuid: identity.espVolumeId, mountPoint: '/boot/efi' },
    { number: root.number, name: root.name, typeCode: root.typeCode, partUuid: identity.partUuids.root, ...extent(root.number), filesystem: 'ext4', label: root.label, fsUuid: identity.rootFsUuid, mountPoint: '/' },
  ];
}

export interface LoopDisk {
  device: string;
  partition(n: number): string;
  held: Held;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const partitionNode = (device: string, n: number) => `${device}p${n}`;

async function waitForNodes(nodes: string[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (nodes.every((node) => existsSync(node))) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/** Attaches the raw file to a free loop device and makes its partitions appear as /dev/loopNpM. */
export async function attachLoopDisk(path: string, partitionCount: number, teardown: Teardown, ctx: Ctx): Promise<LoopDisk> {
  const { stdout } = await runProcess('losetup', ['--find', '--show', '--partscan', path], { ...ctx, capture: true });
  const device = stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(device)) throw new PlinthError('internal', `losetup printed '${device}', not a loop device`);
  const held = teardown.hold(`detach ${device}`, async () => {
    await runProcess('blockdev', ['--flushbufs', device], { log: ctx.log }).catch(() => undefined);
    await detachLoopDevice(device, ctx.log);
  });
  const nodes = Array.from({ length: partitionCount }, (_, i) => partitionNode(device, i + 1));
  if (!(await waitForNodes(nodes, 2000))) {
    // NOTE: on some kernels (seen in microVMs) --partscan attaches the device without scanning
    // its table; partx asks the kernel to add the partitions explicitly.
    await runProcess('partx', ['--update', device], ctx);
    if (!(await waitForNodes(nodes, 5000))) {
      throw new PlinthError('internal', `partitions of ${device} did not appear (${nodes.join(', ')})`);
    }
  }
  return { device, partition: (n) => partitionNode(device, n), held };
}

export async function formatPartitions(disk: LoopDisk, identity: DiskIdentity, ctx: Ctx): Promise<void> {
  const { esp, root } = PARTITIONS;
  await runProcess('mkfs.vfat', ['-F', '32', '-n', esp.label, '-i', identity.espVolumeId.replace('-', ''), disk.partition(esp.number)], ctx);
  await runProcess(
    'mkfs.ext4',
    ['-q', '-F', '-L', root.label, '-U', identity.rootFsUuid, '-O', ROOT_EXT4_FEATURES, disk.partition(root.number)],
    ctx,
  );
}

/**
 * Copies a directory tree into the EFI system partition with mtools, without mounting it:
 * build hosts whose kernel has no vfat driver (containers, microVMs) can still build images.
 */
export async function copyIntoFat(device: string, sourceDir: string, ctx: Ctx): Promise<void> {
  const env = { MTOOLS_SKIP_CHECK: '1' };
  const { stdout } = await runProcess('find', [sourceDir, '-mindepth', '1', '-maxdepth', '1'], { ...ctx, capture: true });
  const entries = stdout.split('\n').filter(Boolean).sort();
  if (entries.length === 0) throw new PlinthError('internal', `nothing to copy into the EFI system partition from ${sourceDir}`);
  await runProcess('mcopy', ['-s', '-p', '-Q', '-i', device, ...entries, '::/'], { ...ctx, env });
  // Read back: the firmware's fallback path must be there.
  const { stdout: listing } = await runProcess('mdir', ['-/', '-b', '-i', device, '::/'], { ...ctx, env, capture: true });
  if (!/\/EFI\/BOOT\/BOOTX64\.EFI$/im.test(listing)) {
    throw new PlinthError('internal', `EFI system partition has no \\EFI\\BOOT\\BOOTX64.EFI after copying (${basename(sourceDir)})`);
  }
}

export async function checkFilesystems(disk: LoopDisk, ctx: Ctx): Promise<void> {
  // e2fsck -p exits 1 when it fixed something harmless (e.g. a timestamp): still a good file system.
  await runProcess('e2fsck', ['-f', '-p', disk.partition(PARTITIONS.root.number)], { ...ctx, okExitCodes: [0, 1] });
  await runProcess('fsck.vfat', ['-n', disk.partition(PARTITIONS.esp.number)], ctx);
}

/** Turns every all-zero block of the finished file into a hole. */
export async function digHoles(path: string, ctx: Ctx): Promise<void> {
  await runProcess('fallocate', ['--dig-holes', path], ctx);
}
