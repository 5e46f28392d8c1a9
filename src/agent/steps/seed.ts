import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { describeBlockDevice, syncPartitionTable } from './block-device.js';
import { StepError } from './errors.js';
import { nodeExec, type Exec } from './exec.js';
import { withMounted } from './mount.js';
import { addKernelArgs } from './kernel-args.js';
import { findRootFilesystem } from './root-filesystem.js';

/**
 * Gives the deployed system its cloud-init NoCloud seed by writing the documents into the
 * root filesystem, at /var/lib/cloud/seed/nocloud/, where the NoCloud datasource looks
 * first (and which ds-identify recognises, so images with `datasource_list: [NoCloud, None]`
 * find it).
 *
 * Why not a CIDATA partition: the root partition has just grown to the end of the disk, so
 * a seed partition would need the root shrunk or squeezed in front of it; it would stay on
 * the tenant's disk for good, readable by any process with access to the block device's
 * FAT (which has no owners or modes); and user-data often carries secrets. In the root
 * filesystem the files are root's, mode 0600, and belong to the installed system.
 */
export interface NoCloudSeed {
  userData: string;
  metaData: string;
  networkConfig: string;
}

export interface SeedOptions {
  log: (line: string) => void;
  exec?: Exec;
  /** Kernel arguments for the installed system's boot loader (addKernelArgs), written in the same mount. */
  kernelArgs?: string | undefined;
}

export interface SeedResult {
  partition: string;
  filesystem: string;
  directory: string;
  files: { name: string; bytes: number }[];
  /** The boot loader files that got the kernel arguments (empty without kernelArgs). */
  kernelArgsFiles: string[];
}

/** Where NoCloud reads its seed from, inside the installed system. */
export const NOCLOUD_SEED_DIR = 'var/lib/cloud/seed/nocloud';

export async function writeNoCloudSeed(device: string, seed: NoCloudSeed, options: SeedOptions): Promise<SeedResult> {
  const exec = options.exec ?? nodeExec();
  const disk = await describeBlockDevice(device);
  const partitions = await syncPartitionTable(disk, exec, options.log);
  const root = await findRootFilesystem(disk, partitions, exec);
  return writeNoCloudSeedOn(root.partition, `${root.type}${root.label ? ` "${root.label}"` : ''}`, root.type, seed, { ...options, exec });
}

/** The seed written into the file system of one partition (a keep-partitions install: the partition the image went into). */
export async function writeNoCloudSeedOn(partition: { name: string; path: string }, what: string, fsType: string, seed: NoCloudSeed, options: SeedOptions & { exec: Exec }): Promise<SeedResult> {
  let kernelArgsFiles: string[] = [];
  await withMounted(partition.path, fsType, options.exec, async (mountpoint) => {
    kernelArgsFiles = await writeSeedInto(mountpoint, seed, options, partition.name);
  });
  options.log(`configure: NoCloud seed written to /${NOCLOUD_SEED_DIR} on ${partition.name} (${what})`);
  return {
    partition: partition.path,
    filesystem: fsType,
    directory: `/${NOCLOUD_SEED_DIR}`,
    files: seedFiles(seed).map((f) => ({ name: f.name, bytes: Buffer.byteLength(f.content) })),
    kernelArgsFiles,
  };
}

const seedFiles = (seed: NoCloudSeed) => [
  { name: 'user-data', content: seed.userData },
  { name: 'meta-data', content: seed.metaData },
  { name: 'network-config', content: seed.networkConfig },
];

/**
 * Writes the seed (and the kernel arguments) into an installed system mounted at `mountpoint`;
 * the boot loader files that got the kernel arguments. `where` names the file system in errors.
 */
export async function writeSeedInto(mountpoint: string, seed: NoCloudSeed, options: Pick<SeedOptions, 'log' | 'kernelArgs'>, where: string): Promise<string[]> {
  const dir = join(mountpoint, NOCLOUD_SEED_DIR);
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  // The image decides what its paths are; a symlinked /var/lib/cloud must not lead the
  // writes out of the mounted filesystem (into the installer's own root).
  const real = await fsp.realpath(dir);
  if (!real.startsWith(`${mountpoint}/`)) throw new StepError('image', `${where}: /${NOCLOUD_SEED_DIR} leads out of the root filesystem (to ${real})`, { partition: where });
  for (const file of seedFiles(seed)) await writePrivateFile(join(real, file.name), file.content);
  if (!options.kernelArgs) return [];
  const changed = await addKernelArgs(mountpoint, options.kernelArgs);
  options.log(`configure: kernel arguments "${options.kernelArgs}" added to ${changed.join(', ') || 'the boot loader (already there)'}`);
  return changed;
}

/** Replaces `path` with `content`, root's and 0600, synced; never follows a symlink at `path`. */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  await fsp.rm(path, { force: true });
  const fh = await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(content);
    // The mode given to open is filtered by the umask; these make it exact.
    await fh.chmod(0o600);
    await fh.chown(0, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
