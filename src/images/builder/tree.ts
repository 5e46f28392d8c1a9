/**
 * `buildTree`: the system an image holds, as an eDeploy tree instead of a disk: the same
 * cached base (debootstrap runs once for both), configured the same way (serial console,
 * cloud-init NoCloud, no identity of its own), plus what a tree deploy and `edeploy` need on
 * the host (mdadm and LVM for the disk layouts, rsync and curl for `edeploy`), packed as a
 * gzip'ed tar, `NAME.edeploy` — the archive `plinth tree import` takes. No partitions, no boot
 * loader installed, no fstab: a tree deploy makes those from its disk layout.
 *
 * Like an image, the tree is built in a work directory inside the output directory and
 * appears under its name only when complete; whatever fails, the chroot is taken down and
 * the partial files are deleted.
 */
import { mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File } from '../../build/digest.js';
import { throwIfAborted } from '../../build/process.js';
import { cachePaths, installBaseSystem, TAR_OPTIONS } from './base-system.js';
import { inWorkDir, stepLogger } from './build.js';
import { configureImage, installPackages, runPostInstallScript, scrubImage } from './configure.js';
import { installedPackages, newestKernel } from './manifest.js';
import { DEBIAN_RELEASE, DEBIAN_SUITE, resolveBuildOptions, type BuildImageOptions } from './options.js';
import { IMAGE_BUILD, runProcess } from './process.js';

/** What a tree has beyond an image's packages: disk layouts' tools for its initramfs, rsync and curl for `edeploy` (upgrades, reports). */
export const TREE_PACKAGES: readonly string[] = ['curl', 'lvm2', 'mdadm', 'rsync'];

export const treeFileName = (name: string) => `${name}.edeploy`;

export interface BuiltTree {
  /** The gzip'ed tar of the root directory. */
  path: string;
  sha256: string;
  bytes: number;
  kernel: string;
  packages: number;
  debianVersion: string;
  baseSnapshot: string;
  baseSnapshotReused: boolean;
  buildSeconds: number;
}

export type BuildTreeOptions = Omit<BuildImageOptions, 'sizeBytes'>;

export async function buildTree(input: BuildTreeOptions): Promise<BuiltTree> {
  const options = resolveBuildOptions(input);
  const { log, signal, name, outputDir, cacheDir } = options;
  const started = Date.now();
  const step = stepLogger(options, started);
  const ctx = { log, signal };

  step(`building tree ${name} (Debian ${DEBIAN_RELEASE} ${DEBIAN_SUITE}) in ${outputDir}`);
  return inWorkDir(options, "building a tree needs root: it uses mount and chroot, and keeps every file's owner", async (workDir, teardown) => {
    const root = join(workDir, 'root');
    mkdirSync(root);

    step('installing the base system');
    const { base, chroot } = await installBaseSystem(root, { options, teardown, blockNodes: [] });
    step('configuring the tree');
    await configureImage(chroot, null);
    step(`installing ${TREE_PACKAGES.join(', ')}`);
    await installPackages(chroot, TREE_PACKAGES, cachePaths(cacheDir).aptArchives, teardown, log);
    if (options.postInstallScript) {
      step(`running ${options.postInstallScript} in the tree`);
      await runPostInstallScript(chroot, { path: options.postInstallScript, imageName: name, aptArchives: cachePaths(cacheDir).aptArchives }, teardown, log);
    }
    const kernel = await newestKernel(chroot);
    const debianVersion = readFileSync(join(root, 'etc/debian_version'), 'utf8').trim();
    const packages = await installedPackages(chroot);

    step('cleaning up the tree');
    await scrubImage(chroot);
    await chroot.held.release();

    step('packing the tree');
    const packed = join(workDir, treeFileName(name));
    await runProcess('tar', ['-I', 'gzip -1', '-cpf', packed, ...TAR_OPTIONS, '--sort=name', '--exclude=./lost+found', '-C', root, '.'], ctx);
    const sha256 = await sha256File(packed, signal);
    throwIfAborted(signal, IMAGE_BUILD);
    const finalPath = join(outputDir, treeFileName(name));
    renameSync(packed, finalPath);
    const bytes = statSync(finalPath).size;
    step(`tree ${finalPath}: ${(bytes / 2 ** 20).toFixed(0)} MiB packed, kernel ${kernel}, ${packages.length} packages`);
    return {
      path: finalPath,
      sha256,
      bytes,
      kernel,
      packages: packages.length,
      debianVersion,
      baseSnapshot: base.key,
      baseSnapshotReused: base.reused,
      buildSeconds: Math.round((Date.now() - started) / 1000),
    };
  });
}
