import type { BlockDevice, Partition } from './block-device.js';
import { probeSignatures } from './block-device.js';
import { StepError } from './errors.js';
import type { Exec } from './exec.js';

/**
 * Where an image's root filesystem is. Images built by `plinth image build` label it
 * ROOT_LABEL and put it last on the disk (BIOS boot, ESP, root), so that it is the partition
 * that can grow. Other images are accepted when their root is the last partition holding a
 * Linux filesystem, which is how the usual cloud images are laid out too (their root is
 * partition 1 by number but last by position).
 */

/** The root filesystem label the image builder writes (src/images/builder/disk.ts). */
export const ROOT_LABEL = 'plinth-root';

const LINUX_FILESYSTEMS = ['ext4', 'ext3', 'ext2', 'xfs', 'btrfs'];

export interface RootFilesystem {
  partition: Partition;
  type: string;
  label: string | null;
  uuid: string | null;
}

export async function findRootFilesystem(disk: BlockDevice, partitions: Partition[], exec: Exec): Promise<RootFilesystem> {
  const probed = await Promise.all(partitions.map(async (partition) => ({ partition, found: (await probeSignatures(partition.path, exec)) ?? {} })));
  const asRoot = ({ partition, found }: (typeof probed)[number]): RootFilesystem => ({
    partition,
    type: found['TYPE'] ?? 'unknown',
    label: found['LABEL'] ?? null,
    uuid: found['UUID'] ?? null,
  });
  const labelled = probed.find((p) => p.found['LABEL'] === ROOT_LABEL);
  if (labelled) return asRoot(labelled);
  const lastLinux = [...probed].reverse().find((p) => LINUX_FILESYSTEMS.includes(p.found['TYPE'] ?? ''));
  if (lastLinux) return asRoot(lastLinux);
  const seen = probed.map((p) => `${p.partition.name}: ${p.found['TYPE'] ?? 'no filesystem'}${p.found['LABEL'] ? ` "${p.found['LABEL']}"` : ''}`).join(', ');
  throw new StepError('image', `${disk.name}: the image has no root filesystem (no "${ROOT_LABEL}" label, no Linux filesystem) among its partitions: ${seen || 'none'}`, {
    disk: disk.name,
  });
}
