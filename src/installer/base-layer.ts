import { createWriteStream, existsSync, copyFileSync, chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { PlinthError } from '../core/errors.js';
import { dependencyNames, findPackage, installedPackages } from './debian-index.js';
import { layerFileName, packCpio } from './cpio-archive.js';
import { publishEntry, verifiedEntry } from '../build/cache.js';
import { sha256File } from '../build/digest.js';
import { findProgram } from '../build/host-tools.js';
import { runTool, throwIfAborted } from '../build/process.js';
import { makeScratchDir, removeScratchDir } from '../build/scratch.js';
import { installerRootFiles, NODE_PATH } from './init-script.js';
import { parseModulesDep, selectModules } from './kernel-modules.js';
import { formatSeconds, formatSize } from './log-format.js';
import { installerTool } from './tools.js';
import type { BaseLayerInputs, BaseLayerRecord, KernelRecord } from './manifest.js';

export const BASE_LAYER_RECORD = 'layer.json';
export const KERNEL_FILE = 'vmlinuz';

interface BuildContext {
  /** DATA_DIR/cache/installer */
  cacheDir: string;
  /** Kept across builds: debootstrap's --cache-dir and the kernel package. */
  debCacheDir: string;
  inputs: BaseLayerInputs;
  key: string;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Builds the base layer (Debian root filesystem, kernel modules, Node.js, /init) and the
 * kernel, into DATA_DIR/cache/installer/base/KEY/. Everything happens in a scratch
 * directory that is renamed into place at the end and removed on failure.
 */
export async function buildBaseLayer(ctx: BuildContext): Promise<{ dir: string; record: BaseLayerRecord }> {
  const started = Date.now();
  const work = makeScratchDir(ctx.cacheDir, 'tmp-base');
  try {
    const root = join(work, 'root');
    await debootstrap(ctx, root);
    throwIfAborted(ctx.signal, 'installer build');

    const packages = installedPackages(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8'));
    const kernel = await installKernel(ctx, root, work);
    throwIfAborted(ctx.signal, 'installer build');

    const pruned = pruneRoot(root, ctx.inputs.prunedPackages, ctx.inputs.prunedPaths);
    ctx.log(`pruned ${pruned.packages.length} packages' files (${pruned.packages.join(', ') || 'none'}) and ${pruned.paths.length} paths`);

    const nodeVersion = await installNode(ctx, root);
    for (const file of installerRootFiles()) {
      const target = join(root, file.path);
      mkdirSync(dirname(target), { recursive: true });
      rmSync(target, { force: true });
      writeFileSync(target, file.content, { mode: file.mode });
      chmodSync(target, file.mode);
    }
    await ensureDeviceNodes(root);

    const out = join(work, 'out');
    mkdirSync(out);
    const fileName = layerFileName('base', ctx.inputs.compression);
    ctx.log(`packing the base layer (${ctx.inputs.compression})`);
    const packStarted = Date.now();
    const { uncompressedBytes } = await packCpio(root, join(out, fileName), ctx.inputs.compression, ctx.signal);
    const bytes = statSync(join(out, fileName)).size;
    ctx.log(`base layer: ${formatSize(bytes)} (${formatSize(uncompressedBytes)} unpacked) in ${formatSeconds(Date.now() - packStarted)}`);

    renameSync(join(work, KERNEL_FILE), join(out, KERNEL_FILE));
    const record: BaseLayerRecord = {
      name: 'base',
      key: ctx.key,
      file: fileName,
      bytes,
      uncompressedBytes,
      sha256: await sha256File(join(out, fileName)),
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - started,
      inputs: ctx.inputs,
      kernel: { ...kernel, file: KERNEL_FILE },
      packages,
      nodeVersion,
      pruned,
    };
    const final = join(ctx.cacheDir, 'base', ctx.key);
    await publishEntry(out, final, BASE_LAYER_RECORD, record);
    return { dir: final, record };
  } finally {
    await removeScratchDir(work);
  }
}

/** Reads a cached base layer; null unless its files are all there and intact. */
export async function cachedBaseLayer(cacheDir: string, key: string): Promise<{ dir: string; record: BaseLayerRecord } | null> {
  const dir = join(cacheDir, 'base', key);
  const record = await verifiedEntry<BaseLayerRecord>(dir, BASE_LAYER_RECORD, (r) => [r, r.kernel]);
  return record ? { dir, record } : null;
}

async function debootstrap(ctx: BuildContext, root: string): Promise<void> {
  const { suite, mirror, packages } = ctx.inputs;
  mkdirSync(ctx.debCacheDir, { recursive: true });
  ctx.log(`debootstrap ${suite} from ${mirror} (minbase + ${packages.length} packages)`);
  const started = Date.now();
  let retrieved = 0;
  try {
    await runTool(
      'debootstrap',
      [
        '--variant=minbase',
        `--arch=${ctx.inputs.arch}`,
        `--include=${packages.join(',')}`,
        `--cache-dir=${ctx.debCacheDir}`,
        suite,
        root,
        mirror,
      ],
      {
        ...installerTool(ctx.signal),
        tailLines: 60,
        onLine: (line) => {
          // One line per package and step is noise in a build log; keep the stages.
          // "I: Retrieving <package> <version>"; the index files have no version.
          if (/^I: Retrieving \S+ \S+$/.test(line)) retrieved++;
          if (/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /.test(line)) return;
          ctx.log(`debootstrap: ${line}`);
        },
      },
    );
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    const logPath = join(root, 'debootstrap', 'debootstrap.log');
    const detail = existsSync(logPath) ? `\n  debootstrap.log ends with:\n  ${readFileSync(logPath, 'utf8').trim().split('\n').slice(-10).join('\n  ')}` : '';
    throw new PlinthError('internal', `debootstrap of ${suite} from ${mirror} failed: ${(e as Error).message}${detail}`, { cause: e });
  }
  ctx.log(`debootstrap done in ${formatSeconds(Date.now() - started)} (${retrieved} packages downloaded, the rest from the cache)`);
}

/**
 * Installs Debian's kernel: resolves linux-image-amd64 in the Packages index debootstrap
 * verified, downloads the versioned image package into the .deb cache, extracts it,
 * copies vmlinuz and the selected modules, and runs depmod for the installer's root.
 */
async function installKernel(ctx: BuildContext, root: string, work: string): Promise<Omit<KernelRecord, 'file'>> {
  const listsDir = join(root, 'var/lib/apt/lists');
  const indexName = readdirSync(listsDir).find((f) => f.endsWith(`_dists_${ctx.inputs.suite}_main_binary-${ctx.inputs.arch}_Packages`));
  if (!indexName) throw new PlinthError('internal', `no Packages index for ${ctx.inputs.suite}/main in ${listsDir}`);
  const index = readFileSync(join(listsDir, indexName), 'utf8');
  const meta = findPackage(index, `linux-image-${ctx.inputs.arch}`);
  const imageName = dependencyNames(meta?.get('Depends')).find((d) => d.startsWith('linux-image-'));
  const image = imageName ? findPackage(index, imageName) : null;
  const filename = image?.get('Filename');
  const sha256 = image?.get('SHA256');
  const version = image?.get('Version');
  if (!imageName || !image || !filename || !sha256 || !version) {
    throw new PlinthError('internal', `cannot resolve linux-image-${ctx.inputs.arch} in ${ctx.inputs.suite}'s Packages index`);
  }

  const debPath = kernelPackagePath(ctx.debCacheDir, imageName, version);
  if (existsSync(debPath) && (await sha256File(debPath)) === sha256) {
    ctx.log(`kernel ${imageName} ${version} (cached package)`);
  } else {
    const url = `${ctx.inputs.mirror.replace(/\/+$/, '')}/${filename}`;
    ctx.log(`downloading kernel ${imageName} ${version}`);
    await download(url, debPath, sha256, ctx.signal);
  }

  const extracted = join(work, 'kernel');
  const { release, modules } = await installModules({ debPath, extracted, root, rules: ctx.inputs.moduleRules, log: ctx.log, signal: ctx.signal });
  copyFileSync(join(extracted, 'boot', `vmlinuz-${release}`), join(work, KERNEL_FILE));

  const kernelPath = join(work, KERNEL_FILE);
  return { package: imageName, version, release, modules, bytes: statSync(kernelPath).size, sha256: await sha256File(kernelPath) };
}

/** Where the kernel's image package is kept in the .deb cache. */
export const kernelPackagePath = (debCacheDir: string, name: string, version: string, arch = 'amd64'): string =>
  join(debCacheDir, `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb`);

/**
 * Extracts the kernel's image package into `extracted` and copies the modules the rules
 * select, with their dependencies, into `root`'s module tree, then runs depmod for it.
 */
export async function installModules(o: {
  debPath: string;
  extracted: string;
  root: string;
  rules: string[];
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
}): Promise<{ release: string; modules: number }> {
  await runTool('dpkg-deb', ['-x', o.debPath, o.extracted], installerTool(o.signal));
  const releases = readdirSync(join(o.extracted, 'lib/modules'));
  const release = releases[0];
  if (!release || releases.length !== 1) throw new PlinthError('internal', `${o.debPath}: expected one module tree, found ${releases.join(', ') || 'none'}`);

  // NOTE: Debian's image package has no modules.dep (its postinst runs depmod), so compute
  // it for the whole tree to find the dependencies of the modules kept.
  const fullTree = join(o.extracted, 'lib/modules', release);
  await runTool('depmod', ['-b', o.extracted, release], installerTool(o.signal));
  const { modules, unmatchedRules } = selectModules(parseModulesDep(readFileSync(join(fullTree, 'modules.dep'), 'utf8')), o.rules);
  if (unmatchedRules.length > 0) o.log(`kernel module rules that matched nothing in ${release}: ${unmatchedRules.join(', ')}`);

  const tree = join(o.root, 'lib/modules', release);
  let moduleBytes = 0;
  for (const module of modules) {
    const target = join(tree, module);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(fullTree, module), target);
    moduleBytes += statSync(target).size;
  }
  for (const file of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    if (existsSync(join(fullTree, file))) copyFileSync(join(fullTree, file), join(tree, file));
  }
  await runTool('depmod', ['-b', o.root, release], installerTool(o.signal));
  o.log(`kernel ${release}: kept ${modules.length} modules (${formatSize(moduleBytes)})`);
  return { release, modules: modules.length };
}

async function download(url: string, path: string, expectedSha256: string, signal?: AbortSignal): Promise<void> {
  const partial = `${path}.partial`;
  const response = await fetch(url, signal ? { signal } : {});
  if (!response.ok || !response.body) throw new PlinthError('unavailable', `GET ${url}: HTTP ${response.status}`);
  const hash = createHash('sha256');
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, createWriteStream(partial));
  const actual = hash.digest('hex');
  if (actual !== expectedSha256) {
    rmSync(partial, { force: true });
    throw new PlinthError('internal', `${url}: sha256 ${actual} does not match the Packages index (${expectedSha256})`);
  }
  renameSync(partial, path);
}

/**
 * Removes what an installer running from memory never uses. Files of pruned packages are
 * taken from dpkg's file lists; directories are removed only when they end up empty.
 */
export function pruneRoot(root: string, prunedPackages: string[], prunedPaths: string[]): { packages: string[]; paths: string[] } {
  const infoDir = join(root, 'var/lib/dpkg/info');
  const packages: string[] = [];
  for (const name of prunedPackages) {
    const list = [join(infoDir, `${name}.list`), join(infoDir, `${name}:amd64.list`)].find((p) => existsSync(p));
    if (!list) continue;
    packages.push(name);
    const paths = readFileSync(list, 'utf8').split('\n').filter((p) => p && p !== '/.');
    const directories: string[] = [];
    for (const path of paths) {
      const target = join(root, path);
      let stat;
      try {
        stat = lstatSync(target);
      } catch {
        continue;
      }
      if (stat.isDirectory()) directories.push(target);
      else rmSync(target, { force: true });
    }
    for (const dir of directories.sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(dir);
      } catch {
        // Not empty: shared with another package.
      }
    }
  }
  const paths: string[] = [];
  for (const path of prunedPaths) {
    const target = join(root, path);
    if (!existsSync(target)) continue;
    rmSync(target, { recursive: true, force: true });
    paths.push(path);
  }
  // Documentation, except the copyright notices.
  const docDir = join(root, 'usr/share/doc');
  if (existsSync(docDir)) {
    for (const entry of readdirSync(docDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      for (const file of readdirSync(join(docDir, entry.name))) {
        if (file !== 'copyright') rmSync(join(docDir, entry.name, file), { recursive: true, force: true });
      }
    }
    paths.push('usr/share/doc (except copyright files)');
  }
  return { packages, paths };
}

/**
 * Copies the Node.js binary (the one running Plinth, unless told otherwise) with any
 * shared library the root filesystem lacks, strips its debug symbols when binutils is
 * installed, and proves it runs inside the root with chroot.
 */
async function installNode(ctx: BuildContext, root: string): Promise<string> {
  const source = ctx.inputs.node.path;
  const target = join(root, NODE_PATH);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  chmodSync(target, 0o755);
  const strip = findProgram('strip');
  if (strip) {
    const before = statSync(target).size;
    await runTool(strip, ['--strip-all', target], installerTool(ctx.signal));
    ctx.log(`node: stripped ${formatSize(before)} -> ${formatSize(statSync(target).size)}`);
  } else {
    ctx.log('node: binutils is not installed, copying the binary unstripped');
  }

  const { stdout } = await runTool('ldd', [source], { ...installerTool(ctx.signal), stdout: 'capture' });
  for (const line of stdout.split('\n')) {
    // "libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (!path || existsSync(join(root, path))) continue;
    mkdirSync(dirname(join(root, path)), { recursive: true });
    copyFileSync(realpathSync(path), join(root, path));
    ctx.log(`node: added ${path} from the host (not in the Debian root)`);
  }

  try {
    const { stdout: version } = await runTool('chroot', [root, NODE_PATH, '-p', 'process.version'], { ...installerTool(ctx.signal), stdout: 'capture' });
    ctx.log(`node ${version.trim()} runs in the installer root`);
    return version.trim();
  } catch (e) {
    throw new PlinthError('internal', `the Node.js binary ${source} does not run in the installer's Debian root: ${(e as Error).message}`, { cause: e });
  }
}

/** The kernel opens /dev/console before /init mounts devtmpfs; without it /init has no output. */
async function ensureDeviceNodes(root: string): Promise<void> {
  mkdirSync(join(root, 'dev'), { recursive: true });
  for (const [name, major, minor, mode] of [
    ['console', 5, 1, '600'],
    ['null', 1, 3, '666'],
  ] as const) {
    const path = join(root, 'dev', name);
    if (existsSync(path)) continue;
    await runTool('mknod', ['-m', mode, path, 'c', String(major), String(minor)], installerTool());
  }
}
