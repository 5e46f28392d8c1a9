import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, realpathSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf, PlinthError, validation } from '../core/errors.js';
import { publishEntry, verifiedEntry } from '../build/cache.js';
import { sha256File } from '../build/digest.js';
import { outputOf, throwIfAborted } from '../build/process.js';
import { makeScratchDir, removeScratchDir } from '../build/scratch.js';
import { APT_OPTIONS, openChroot } from '../images/builder/chroot.js';
import { Teardown } from '../images/builder/teardown.js';
import { TOOL_OUTPUT_PREFIX } from '../images/builder/process.js';
import { installModules, kernelPackagePath, pruneRoot } from './base-layer.js';
import { layerFileName, listTree, packCpio, unpackCpio } from './cpio-archive.js';
import { installedPackages } from './debian-index.js';
import { formatSeconds, formatSize } from './log-format.js';
import type { BaseLayerRecord, ExtrasLayerRecord } from './manifest.js';

const EXTRAS_LAYER_RECORD = 'layer.json';

/** Files the build changes in the root for apt-get's sake and puts back before the comparison. */
const BUILD_ONLY_FILES = ['etc/resolv.conf', 'etc/apt/sources.list'];

/**
 * The extras layer: the site's packages and firmware (extras.ts), installed with apt-get in
 * a chroot of a copy of the base layer's root, and its kernel modules, copied from the kernel
 * package the base was built with, holding only the files they add or change.
 * Later archives override earlier ones when the kernel unpacks the initramfs, so base then
 * extras gives the root filesystem apt-get left; the base layer itself is the cached one an
 * installer without extras uses.
 *
 * What is packed is decided by comparing the root before and after the install: new paths,
 * regular files whose content changed, and anything whose type, mode, owner, link target or
 * device changed. Files a package removes from the base cannot be removed by a later archive;
 * the build says how many there were.
 */
export async function buildExtrasLayer(ctx: {
  cacheDir: string;
  /** Where the base build kept the kernel's package. */
  debCacheDir: string;
  key: string;
  base: { dir: string; record: BaseLayerRecord };
  inputs: ExtrasLayerRecord['inputs'];
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<{ dir: string; record: ExtrasLayerRecord }> {
  const started = Date.now();
  const { base, inputs, log, signal } = ctx;
  // The chroot's mounts are found again by their real path (/proc/self/mountinfo) to be undone.
  const work = realpathSync(makeScratchDir(ctx.cacheDir, 'tmp-extras'));
  try {
    const root = join(work, 'root');
    mkdirSync(root);
    await unpackCpio(join(base.dir, base.record.file), root, base.record.inputs.compression, signal);
    const before = snapshot(root);
    log(`extras layer: unpacked the base layer (${before.size} paths) in ${formatSeconds(Date.now() - started)}`);
    throwIfAborted(signal, 'installer build');

    if (inputs.packages.length > 0) await installPackages(root, base.record, inputs, log, signal);
    if (inputs.modules?.length) {
      const { package: name, version } = base.record.kernel;
      const debPath = kernelPackagePath(ctx.debCacheDir, name, version);
      if (!existsSync(debPath)) {
        throw new PlinthError('conflict', `the base layer's kernel package ${name} ${version} is no longer in ${ctx.debCacheDir}: build with --force to rebuild the base`);
      }
      await installModules({ debPath, extracted: join(work, 'kernel'), root, rules: inputs.modules, log: (line) => log(`extras layer: ${line}`), signal });
    }
    throwIfAborted(signal, 'installer build');

    const after = snapshot(root, before);
    const changed = [...after].filter(([path, entry]) => before.get(path)?.signature !== entry.signature).map(([path]) => path);
    const removed = [...before.keys()].filter((path) => !after.has(path));
    if (removed.length > 0) log(`extras layer: ${removed.length} files of the base were removed by the packages and stay in the installer (a later layer cannot remove them), e.g. ${removed.slice(0, 3).join(', ')}`);
    if (changed.length === 0) log('extras layer: the extras add nothing the base layer does not have already');

    const packages = installedPackages(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8'));
    const added = Object.fromEntries(Object.entries(packages).filter(([name, version]) => base.record.packages[name] !== version));

    const out = join(work, 'out');
    mkdirSync(out);
    const file = layerFileName('extras', inputs.compression);
    const { uncompressedBytes } = await packCpio(root, join(out, file), inputs.compression, signal, changed);
    const bytes = statSync(join(out, file)).size;
    log(`extras layer: ${changed.length} paths, ${formatSize(bytes)} (${formatSize(uncompressedBytes)} unpacked), ${Object.keys(added).length} packages added or upgraded`);
    const record: ExtrasLayerRecord = {
      name: 'extras',
      key: ctx.key,
      file,
      bytes,
      uncompressedBytes,
      sha256: await sha256File(join(out, file)),
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - started,
      inputs,
      packages: added,
      paths: changed.length,
    };
    const final = join(ctx.cacheDir, 'extras', ctx.key);
    await publishEntry(out, final, EXTRAS_LAYER_RECORD, record);
    return { dir: final, record };
  } finally {
    await removeScratchDir(work);
  }
}

/**
 * apt-get update and install in a chroot of `root` (the image builder's: its own /proc, /sys,
 * /dev, no daemons), then the build-only files put back and the root pruned as the base was.
 */
async function installPackages(
  root: string,
  base: BaseLayerRecord,
  inputs: ExtrasLayerRecord['inputs'],
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const installStarted = Date.now();
  const saved = BUILD_ONLY_FILES.map((path) => ({ path, entry: savedEntry(join(root, path)) }));
  // The base layer's package indexes were pruned; the archive may have moved on since.
  mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
  mkdirSync(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
  writeFileSync(join(root, 'etc/apt/sources.list'), `deb ${base.inputs.mirror} ${base.inputs.suite} ${inputs.components.join(' ')}\n`);
  const teardown = new Teardown(log);
  try {
    // apt-get prints a line per package and per index; keep errors and the summary.
    const aptLog = (line: string) => {
      const text = line.startsWith(TOOL_OUTPUT_PREFIX) ? line.slice(TOOL_OUTPUT_PREFIX.length) : line;
      if (/^(E:|W:|\d+ upgraded|Need to get)/.test(text)) log(`apt-get: ${text}`);
    };
    const chroot = await openChroot(root, [], teardown, { log: aptLog, signal });
    await chroot.run(['apt-get', ...APT_OPTIONS, 'update'], { log: aptLog });
    await chroot.run(['apt-get', ...APT_OPTIONS, '-y', 'install', ...inputs.packages], { log: aptLog }).catch((e: unknown) => {
      throw signal?.aborted ? e : installFailure(e, inputs.packages, `${base.inputs.suite} (${inputs.components.join(', ')})`);
    });
    await chroot.held.release();
  } finally {
    await teardown.unwind();
  }
  for (const { path, entry } of saved) restoreEntry(join(root, path), entry);
  const pruned = pruneRoot(root, base.inputs.prunedPackages, base.inputs.prunedPaths);
  log(`extras layer: installed ${inputs.packages.join(' ')} in ${formatSeconds(Date.now() - installStarted)} (pruned ${pruned.paths.length} paths again)`);
}

/** apt-get's refusal of a name as the field's error; anything else as what apt-get said. */
function installFailure(e: unknown, packages: string[], archive: string): PlinthError {
  const output = outputOf(e);
  const missing = output.map((line) => /^E: Unable to locate package (\S+)/.exec(line)?.[1]).find((name) => name !== undefined);
  // The field is the extras' list (packages and firmware together, as they are installed).
  if (missing !== undefined) return validation('packages', `'${missing}' is not a package of Debian ${archive}`);
  const errors = output.filter((line) => line.startsWith('E: '));
  return new PlinthError('internal', `apt-get install ${packages.join(' ')} failed: ${errors.join('; ') || messageOf(e)}`, { cause: e });
}

/** Reads a cached extras layer; null unless its file is there and intact. */
export async function cachedExtrasLayer(cacheDir: string, key: string): Promise<{ dir: string; record: ExtrasLayerRecord } | null> {
  const dir = join(cacheDir, 'extras', key);
  const record = await verifiedEntry<ExtrasLayerRecord>(dir, EXTRAS_LAYER_RECORD, (r) => [r]);
  return record ? { dir, record } : null;
}

interface PathState {
  /** What decides whether the path goes into the layer: type, mode, owner and content (never times). */
  signature: string;
  /** Inode and change time: a file with both unchanged keeps its content and is not read again. */
  identity: string;
}

/**
 * Every path below `root` with its state. Regular files are hashed, except those whose inode
 * and change time are the ones recorded in `previous` (dpkg replaces a file by renaming a new
 * one over it, and any write or chmod moves the change time).
 */
export function snapshot(root: string, previous?: Map<string, PathState>): Map<string, PathState> {
  const states = new Map<string, PathState>();
  for (const path of listTree(root)) {
    const full = join(root, path);
    const s = lstatSync(full, { bigint: true });
    const identity = `${s.ino} ${s.ctimeNs}`;
    const owner = `${s.mode.toString(8)} ${s.uid}:${s.gid}`;
    let signature: string;
    if (s.isFile()) {
      const known = previous?.get(path);
      signature = known && known.identity === identity ? known.signature : `f ${owner} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    } else if (s.isSymbolicLink()) signature = `l ${owner} ${readlinkSync(full)}`;
    else if (s.isDirectory()) signature = `d ${owner}`;
    else signature = `o ${owner} ${s.rdev}`;
    states.set(path, { signature, identity });
  }
  return states;
}

type SavedEntry = { kind: 'absent' } | { kind: 'link'; target: string } | { kind: 'file'; content: Buffer; mode: number };

function savedEntry(path: string): SavedEntry {
  try {
    const s = lstatSync(path);
    if (s.isSymbolicLink()) return { kind: 'link', target: readlinkSync(path) };
    return { kind: 'file', content: readFileSync(path), mode: s.mode & 0o7777 };
  } catch {
    return { kind: 'absent' };
  }
}

function restoreEntry(path: string, entry: SavedEntry): void {
  rmSync(path, { force: true });
  if (entry.kind === 'link') symlinkSync(entry.target, path);
  if (entry.kind === 'file') {
    writeFileSync(path, entry.content);
    chmodSync(path, entry.mode);
  }
}
