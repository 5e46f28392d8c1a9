/**
 * `buildImage`: a bootable Debian 12 raw disk image, BIOS and UEFI, configured on first boot
 * by cloud-init. The image is built in a work directory inside the output directory (so the
 * final rename is atomic) and appears under its name only when complete; whatever fails, the
 * chroot, mounts and loop device are taken down and the partial file is deleted.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import { sha256File } from '../../build/digest.js';
import { ensureHostTools } from '../../build/host-tools.js';
import { acquireBuildLock, ownerRecord } from '../../build/lock.js';
import { throwIfAborted } from '../../build/process.js';
import { makeScratchDir, removeScratchDir, unmount, unmountAllUnder } from '../../build/scratch.js';
import { cachePaths, installBaseSystem } from './base-system.js';
import { installBootLoaders } from './boot-loaders.js';
import type { BlockNode } from './chroot.js';
import { CLOUD_INIT_DATASOURCES, configureImage, runPostInstallScript, scrubImage } from './configure.js';
import {
  attachLoopDisk,
  checkFilesystems,
  createSparseFile,
  describePartitions,
  digHoles,
  formatPartitions,
  newDiskIdentity,
  partitionDisk,
  PARTITIONS,
} from './disk.js';
import { BUILD_HOST_REQUIREMENTS } from './host-tools.js';
import { detachLoopDevice, killProcessesUsing, loopDevicesBackedBy, OWNER_FILE, sweepAbandonedBuilds, WORK_DIR_PREFIX } from './host-state.js';
import { manifestJson, readImageContents } from './manifest.js';
import {
  ARCHITECTURE,
  DEBIAN_RELEASE,
  DEBIAN_SUITE,
  resolveBuildOptions,
  type BuildImageOptions,
  type BuiltImage,
  type Firmware,
  type ImageManifest,
  type ResolvedBuildOptions,
} from './options.js';
import { IMAGE_BUILD, runProcess, TOOL_OUTPUT_PREFIX } from './process.js';
import { Teardown, type Held } from './teardown.js';

/** Bump when the image layout or configuration changes in a way consumers may care about. */
export const IMAGE_BUILDER_VERSION = 1;
export const FIRMWARE: Firmware[] = ['bios', 'uefi'];

export const imageFileName = (name: string) => `${name}.raw`;
export const manifestFileName = (name: string) => `${name}.manifest.json`;
export const checksumFileName = (name: string) => `${name}.raw.sha256`;

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

const elapsed = (since: number): string => {
  const s = Math.floor((Date.now() - since) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

/**
 * One build at a time per cache directory: debootstrap's and APT's package caches are not
 * safe to share between concurrent runs.
 */
function lockCache(cacheDir: string, teardown: Teardown): Held {
  const path = join(cacheDir, 'build.lock');
  const release = acquireBuildLock(path, IMAGE_BUILD);
  return teardown.hold(`unlock ${path}`, async () => release());
}

/** A build's progress lines, each with the time since `started`; each checks for an abort first. */
export function stepLogger(options: Pick<ResolvedBuildOptions, 'log' | 'signal'>, started: number): (text: string) => void {
  return (text) => {
    throwIfAborted(options.signal, IMAGE_BUILD);
    options.log(`[${elapsed(started)}] ${text}`);
  };
}

export async function buildImage(input: BuildImageOptions): Promise<BuiltImage> {
  const options = resolveBuildOptions(input);
  const { log, signal, name, outputDir, cacheDir } = options;
  const started = Date.now();
  const step = stepLogger(options, started);
  const ctx = { log, signal };

  step(`building image ${name} (Debian ${DEBIAN_RELEASE} ${DEBIAN_SUITE}, ${Number((options.sizeBytes / 2 ** 30).toFixed(2))} GiB) in ${outputDir}`);
  return inWorkDir(options, 'building an image needs root: it uses loop devices, mount and chroot', async (workDir, teardown) => {
    const rawPath = join(workDir, imageFileName(name));

    step('partitioning a sparse raw disk (GPT: BIOS boot, EFI system, root)');
    createSparseFile(rawPath, options.sizeBytes);
    const identity = newDiskIdentity();
    await partitionDisk(rawPath, identity, ctx);
    const partitions = await describePartitions(rawPath, identity, ctx);
    const disk = await attachLoopDisk(rawPath, 3, teardown, ctx);
    await formatPartitions(disk, identity, ctx);

    const root = join(workDir, 'root');
    mkdirSync(root);
    await runProcess('mount', [disk.partition(PARTITIONS.root.number), root], ctx);
    const rootMount = teardown.hold(`unmount ${root}`, () => unmount(root, log));
    const blockNodes: BlockNode[] = [
      { device: disk.device, links: [] },
      { device: disk.partition(PARTITIONS.biosBoot.number), links: [`by-partuuid/${identity.partUuids.biosBoot}`] },
      {
        device: disk.partition(PARTITIONS.esp.number),
        links: [`by-uuid/${identity.espVolumeId}`, `by-partuuid/${identity.partUuids.esp}`, `by-label/${PARTITIONS.esp.label}`],
      },
      {
        device: disk.partition(PARTITIONS.root.number),
        links: [`by-uuid/${identity.rootFsUuid}`, `by-partuuid/${identity.partUuids.root}`, `by-label/${PARTITIONS.root.label}`],
      },
    ];

    step('installing the base system');
    const { base, chroot } = await installBaseSystem(root, { options, teardown, blockNodes });

    step('configuring the image');
    await configureImage(chroot, identity);
    let postInstallScriptSha256: string | null = null;
    if (options.postInstallScript) {
      step(`running ${options.postInstallScript} in the image`);
      postInstallScriptSha256 = createHash('sha256').update(readFileSync(options.postInstallScript)).digest('hex');
      await runPostInstallScript(
        chroot,
        { path: options.postInstallScript, imageName: name, aptArchives: cachePaths(cacheDir).aptArchives },
        teardown,
        log,
      );
    }

    step('installing boot loaders');
    await installBootLoaders(chroot, disk, { rootFsUuid: identity.rootFsUuid }, teardown, ctx);
    const contents = await readImageContents(chroot, CLOUD_INIT_DATASOURCES);

    step('cleaning up the image');
    await scrubImage(chroot);
    await chroot.held.release();
    // Freed blocks (package lists, caches) become holes in the raw file.
    await runProcess('sync', ['--file-system', root], ctx);
    await runProcess('fstrim', ['--verbose', root], ctx);
    await rootMount.release();
    await checkFilesystems(disk, ctx);
    await disk.held.release();
    await digHoles(rawPath, ctx);

    step('computing the checksum');
    const sha256 = await sha256File(rawPath, signal);
    const stat = statSync(rawPath);
    const manifest: ImageManifest = {
      manifestVersion: 1,
      name,
      format: 'raw',
      sizeBytes: stat.size,
      allocatedBytes: stat.blocks * 512,
      sha256,
      distribution: { id: 'debian', release: DEBIAN_RELEASE, suite: DEBIAN_SUITE, version: contents.debianVersion },
      architecture: ARCHITECTURE,
      kernel: contents.kernel,
      firmware: [...FIRMWARE],
      bootLoaders: contents.bootLoaders,
      cloudInit: contents.cloudInit,
      partitionTable: { type: 'gpt', diskGuid: identity.diskGuid, partitions },
      rootFilesystem: { label: PARTITIONS.root.label, uuid: identity.rootFsUuid },
      packages: contents.packages,
      inputs: {
        mirror: options.mirror,
        securityMirror: options.securityMirror,
        extraPackages: options.extraPackages,
        postInstallScriptSha256,
        baseSnapshot: base.key,
        baseSnapshotReused: base.reused,
      },
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 1000),
      builderVersion: IMAGE_BUILDER_VERSION,
    };

    // The image first, then its manifest: a manifest on disk means its image is complete.
    const finalPath = join(outputDir, imageFileName(name));
    const manifestPath = join(outputDir, manifestFileName(name));
    writeFileSync(join(workDir, manifestFileName(name)), manifestJson(manifest));
    writeFileSync(join(workDir, checksumFileName(name)), `${sha256}  ${imageFileName(name)}\n`);
    throwIfAborted(signal, IMAGE_BUILD);
    renameSync(rawPath, finalPath);
    renameSync(join(workDir, checksumFileName(name)), join(outputDir, checksumFileName(name)));
    renameSync(join(workDir, manifestFileName(name)), manifestPath);
    step(
      `image ${finalPath}: ${(stat.size / 2 ** 30).toFixed(1)} GiB, ${(manifest.allocatedBytes / 2 ** 20).toFixed(0)} MiB allocated, kernel ${contents.kernel.version}, sha256 ${sha256}`,
    );
    return { path: finalPath, sha256, sizeBytes: stat.size, format: 'raw', firmware: [...FIRMWARE], manifest, manifestPath };
  });
}

/**
 * The frame of a build: the host's tools, root, the cache's lock, a work directory of its own
 * in the output directory (so that the final renames are atomic); afterwards, whatever
 * happened, everything held is released and the work directory removed.
 */
export async function inWorkDir<T>(options: ResolvedBuildOptions, needsRoot: string, build: (workDir: string, teardown: Teardown) => Promise<T>): Promise<T> {
  const { log, signal, name, outputDir, cacheDir } = options;
  await ensureHostTools(BUILD_HOST_REQUIREMENTS, { log, signal, onToolLine: (line) => log(TOOL_OUTPUT_PREFIX + line) });
  if (!isRoot()) throw new PlinthError('forbidden', needsRoot);
  mkdirSync(outputDir, { recursive: true });
  mkdirSync(cacheDir, { recursive: true });

  const teardown = new Teardown(log);
  let workDir: string | null = null;
  try {
    lockCache(cacheDir, teardown);
    await sweepAbandonedBuilds(outputDir, log);
    workDir = makeScratchDir(outputDir, `${WORK_DIR_PREFIX}${name}`);
    writeFileSync(join(workDir, OWNER_FILE), ownerRecord());
    return await build(workDir, teardown);
  } finally {
    await teardown.unwind();
    if (workDir !== null) await removeLeftovers(workDir, log);
  }
}

/** Whatever the orderly teardown could not release, then the work directory with the partial image. */
async function removeLeftovers(workDir: string, log: (line: string) => void): Promise<void> {
  try {
    await killProcessesUsing(workDir, log);
    await unmountAllUnder(workDir, log);
    for (const device of loopDevicesBackedBy(workDir)) await detachLoopDevice(device, log);
  } catch (e) {
    log(`cleanup: ${(e as Error).message}`);
  }
  await removeScratchDir(workDir, log).catch((e: unknown) => log(`cleanup: ${(e as Error).message}`));
}
