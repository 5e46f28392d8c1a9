import { createReadStream, createWriteStream, existsSync, copyFileSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { supersededEntries } from '../build/cache.js';
import { cacheKey, sha256File, sha256Text } from '../build/digest.js';
import { ensureHostTools } from '../build/host-tools.js';
import { acquireBuildLock } from '../build/lock.js';
import { makeScratchDir, removeScratchDir } from '../build/scratch.js';
import { buildAgentLayer, cachedAgentLayer } from './agent-layer.js';
import { buildBaseLayer, cachedBaseLayer } from './base-layer.js';
import { buildExtrasLayer, cachedExtrasLayer } from './extras-layer.js';
import { formatSeconds, formatSize } from './log-format.js';
import { DEFAULT_MIRROR, DEFAULT_SUITE, PRUNED_PACKAGES, PRUNED_PATHS } from './contents.js';
import { installerPlan, type InstallerExtras, type InstallerPlan } from './extras.js';
import { hostToolsForCompression, type InstallerCompression } from './cpio-archive.js';
import { installerRootFiles } from './init-script.js';
import {
  installerCacheDir,
  installerDir,
  MANIFEST_FILE,
  readManifest,
  type AgentLayerRecord,
  type BaseLayerInputs,
  type BaseLayerRecord,
  type ExtrasLayerRecord,
  type InstallerManifest,
  type LayerRecord,
} from './manifest.js';
import { HOST_TOOLS } from './tools.js';

/**
 * Bumped whenever the way layers are built changes, so that caches built by an older
 * Plinth are not reused.
 */
export const BUILDER_VERSION = '1';

/**
 * zstd at level 10, chosen by measurement (docs/decisions.md): under QEMU's software
 * emulation it unpacked fastest of the formats that survive concatenation (xz took four
 * times as long), it is a sixth smaller than gzip, and it compresses in seconds where
 * level 19 takes minutes for a tenth less.
 */
export const DEFAULT_COMPRESSION: InstallerCompression = 'zstd-10';

export const KERNEL_ARTIFACT = 'vmlinuz';
export const INITRAMFS_ARTIFACT = 'initrd.img';

export interface BuildInstallerOptions {
  dataDir: string;
  /** Path of the agent's single-file JS bundle; it runs as `node /opt/plinth/agent.mjs`. */
  agentBundle: string;
  /** PEM CA certificates the agent trusts for an HTTPS controller (read with readCaBundle). */
  caBundle?: string | null;
  /** Debian mirror; default http://deb.debian.org/debian. */
  mirror?: string;
  /** Debian suite; default bookworm. */
  suite?: string;
  /** Rebuild every layer even when the cache has it. */
  force?: boolean;
  /** Compression of both layers; default zstd-10. */
  compression?: InstallerCompression;
  /** The Node.js binary copied into the installer; default the one running Plinth. */
  nodeBinary?: string;
  /** Debian packages, firmware and kernel modules a site adds: the extras layer (extras.ts). */
  extras?: InstallerExtras;
  /** The layer cache; default DATA_DIR/cache/installer. Data directories may share one (one build at a time). */
  cacheDir?: string;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface BuildInstallerResult {
  /** DATA_DIR/boot/installer */
  dir: string;
  /** Path of vmlinuz. */
  kernel: string;
  /** Path of initrd.img: the layers concatenated, what the boot service serves. */
  initramfs: string;
  /** Nothing was built or rewritten: the installer in `dir` already matched the inputs. */
  cacheHit: boolean;
  initramfsBytes: number;
  manifest: InstallerManifest;
}

/** How many superseded layers the cache keeps (besides the ones in use). */
const KEEP_OLD_BASE_LAYERS = 1;
const KEEP_OLD_AGENT_LAYERS = 3;
const KEEP_OLD_EXTRAS_LAYERS = 3;

/**
 * Builds the installer (kernel + initramfs) into DATA_DIR/boot/installer/ with a
 * manifest.json. The initramfs is two or three layers, each cached under
 * DATA_DIR/cache/installer/ by a hash of its inputs: the base (Debian root, kernel modules,
 * Node.js, /init), the site's extra packages when there are any (installed over the base:
 * extras-layer.ts), and the agent bundle. Unchanged inputs are a cache hit that rewrites
 * nothing; a new agent bundle re-packs only the agent layer; new extras rebuild only theirs.
 *
 * Needs root (debootstrap, chroot, mknod) and an amd64 host. Host packages that are
 * missing are installed with apt-get. Idempotent; one build per data directory at a time.
 */
export async function buildInstaller(options: BuildInstallerOptions): Promise<BuildInstallerResult> {
  const started = Date.now();
  const log = options.log;
  const dataDir = resolve(options.dataDir);
  const agentBundle = resolve(options.agentBundle);
  const compression = options.compression ?? DEFAULT_COMPRESSION;
  const nodeBinary = resolve(options.nodeBinary ?? process.execPath);
  const isRoot = process.getuid?.() === 0;
  // Bad names are refused before anything is built.
  const plan = installerPlan(options.extras);

  if (process.arch !== 'x64') {
    throw new PlinthError('unsupported', `the installer is built for amd64 only; this host is ${process.arch}`);
  }
  if (!existsSync(agentBundle) || !statSync(agentBundle).isFile()) {
    throw new PlinthError('validation', `agent bundle ${agentBundle} does not exist`);
  }
  await ensureHostTools([...HOST_TOOLS, ...hostToolsForCompression(compression)], { log, signal: options.signal });
  if (!isRoot) {
    throw new PlinthError('forbidden', 'building the installer needs root (debootstrap, chroot and mknod)');
  }

  const cacheDir = resolve(options.cacheDir ?? installerCacheDir(dataDir));
  const outDir = installerDir(dataDir);
  mkdirSync(cacheDir, { recursive: true });
  const releaseLock = acquireBuildLock(join(cacheDir, 'build.lock'), 'installer build');
  try {
    const baseInputs = baseLayerInputs({ ...options, plan, compression, node: { path: nodeBinary, sha256: await sha256File(nodeBinary) } });
    const baseKey = baseLayerKey(baseInputs);
    const agentInputs: AgentLayerRecord['inputs'] = {
      builderVersion: BUILDER_VERSION,
      agentSha256: await sha256File(agentBundle),
      compression,
      // Only present with a bundle, so that installers built without one keep their cache key.
      ...(options.caBundle ? { caBundleSha256: sha256Text(options.caBundle) } : {}),
    };
    const agentKey = cacheKey(agentInputs);
    const extrasInputs: ExtrasLayerRecord['inputs'] | null =
      plan.extraPackages.length + plan.extraModules.length > 0
        ? {
            builderVersion: BUILDER_VERSION,
            baseKey,
            packages: plan.extraPackages,
            components: plan.extraComponents,
            ...(plan.extraModules.length > 0 ? { modules: plan.extraModules } : {}),
            compression,
          }
        : null;
    const extrasKey = extrasInputs ? cacheKey(extrasInputs) : null;
    const layerKeys: [string, string][] = [['base', baseKey], ...(extrasKey ? [['extras', extrasKey] as [string, string]] : []), ['agent', agentKey]];

    if (!options.force) {
      const current = await currentInstallerIfUpToDate(outDir, layerKeys);
      if (current) {
        log(`installer is up to date (${layerKeys.map(([name, key]) => `${name} ${key}`).join(', ')}): cache hit, nothing rebuilt`);
        return result(outDir, current, true);
      }
    }

    let base = options.force ? null : await cachedBaseLayer(cacheDir, baseKey);
    const baseCacheHit = base !== null;
    if (base) log(`base layer ${baseKey}: cached (${formatSize(base.record.bytes)})`);
    else {
      log(`base layer ${baseKey}: building`);
      base = await buildBaseLayer({
        cacheDir,
        debCacheDir: join(cacheDir, 'debs'),
        inputs: baseInputs,
        key: baseKey,
        log,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }

    let extras: { dir: string; record: ExtrasLayerRecord; cacheHit: boolean } | null = null;
    if (extrasInputs && extrasKey) {
      const cached = options.force ? null : await cachedExtrasLayer(cacheDir, extrasKey);
      if (cached) log(`extras layer ${extrasKey}: cached (${formatSize(cached.record.bytes)})`);
      else log(`extras layer ${extrasKey}: building (${[...extrasInputs.packages, ...(extrasInputs.modules ?? [])].join(' ')} over base ${baseKey})`);
      const built =
        cached ??
        (await buildExtrasLayer({
          cacheDir,
          debCacheDir: join(cacheDir, 'debs'),
          key: extrasKey,
          base,
          inputs: extrasInputs,
          log,
          ...(options.signal ? { signal: options.signal } : {}),
        }));
      extras = { ...built, cacheHit: cached !== null };
    }

    let agent = options.force ? null : await cachedAgentLayer(cacheDir, agentKey);
    const agentCacheHit = agent !== null;
    if (agent) log(`agent layer ${agentKey}: cached`);
    else {
      agent = await buildAgentLayer({
        cacheDir,
        key: agentKey,
        agentBundle,
        caBundle: options.caBundle ?? null,
        inputs: agentInputs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      log(`agent layer ${agentKey}: packed ${formatSize(agent.record.bytes)} in ${formatSeconds(agent.record.buildMs)}`);
    }

    const manifest = await publish({
      dataDir,
      outDir,
      base: { ...base, cacheHit: baseCacheHit },
      extras,
      agent: { ...agent, cacheHit: agentCacheHit },
      agentBundle,
      started,
    });
    await pruneCache(cacheDir, 'base', baseKey, KEEP_OLD_BASE_LAYERS);
    await pruneCache(cacheDir, 'agent', agentKey, KEEP_OLD_AGENT_LAYERS);
    if (extrasKey) await pruneCache(cacheDir, 'extras', extrasKey, KEEP_OLD_EXTRAS_LAYERS);
    log(`installer ready in ${outDir} (${formatSeconds(Date.now() - started)})`);
    return result(outDir, manifest, false);
  } finally {
    releaseLock();
  }
}

/** The base layer's inputs: what its cache key is made of. */
export function baseLayerInputs(o: { suite?: string; mirror?: string; plan: InstallerPlan; compression: InstallerCompression; node: { path: string; sha256: string } }): BaseLayerInputs {
  return {
    builderVersion: BUILDER_VERSION,
    arch: 'amd64',
    suite: o.suite ?? DEFAULT_SUITE,
    mirror: (o.mirror ?? DEFAULT_MIRROR).replace(/\/+$/, ''),
    packages: o.plan.packages,
    prunedPackages: [...PRUNED_PACKAGES],
    prunedPaths: [...PRUNED_PATHS],
    moduleRules: o.plan.moduleRules,
    initFilesSha256: sha256Text(JSON.stringify(installerRootFiles())),
    node: o.node,
    compression: o.compression,
  };
}

/** The base layer's cache key; the node binary's path is informative only, its content decides. */
export const baseLayerKey = (inputs: BaseLayerInputs): string => cacheKey({ ...inputs, node: { sha256: inputs.node.sha256 } });

function result(outDir: string, manifest: InstallerManifest, cacheHit: boolean): BuildInstallerResult {
  return {
    dir: outDir,
    kernel: join(outDir, manifest.artifacts.kernel.file),
    initramfs: join(outDir, manifest.artifacts.initramfs.file),
    cacheHit,
    initramfsBytes: manifest.artifacts.initramfs.bytes,
    manifest,
  };
}

/** The published installer when it was built from exactly these layers and is intact. */
async function currentInstallerIfUpToDate(outDir: string, layerKeys: [string, string][]): Promise<InstallerManifest | null> {
  const manifest = readManifest(outDir);
  if (!manifest || manifest.builderVersion !== BUILDER_VERSION) return null;
  const keys = manifest.layers.map((l) => `${l.name}:${l.key}`).join(' ');
  if (keys !== layerKeys.map(([name, key]) => `${name}:${key}`).join(' ')) return null;
  for (const artifact of [manifest.artifacts.kernel, manifest.artifacts.initramfs]) {
    const path = join(outDir, artifact.file);
    if (!existsSync(path) || statSync(path).size !== artifact.bytes) return null;
    if ((await sha256File(path)) !== artifact.sha256) return null;
  }
  return manifest;
}

/**
 * Writes vmlinuz, initrd.img (the layers concatenated: QEMU's -initrd and simple boot
 * loaders take one file) and manifest.json into a scratch directory next to the output,
 * then swaps it in with two renames.
 */
async function publish(args: {
  dataDir: string;
  outDir: string;
  base: { dir: string; record: BaseLayerRecord; cacheHit: boolean };
  extras: { dir: string; record: ExtrasLayerRecord; cacheHit: boolean } | null;
  agent: { dir: string; record: AgentLayerRecord; cacheHit: boolean };
  agentBundle: string;
  started: number;
}): Promise<InstallerManifest> {
  const bootDir = join(args.dataDir, 'boot');
  mkdirSync(bootDir, { recursive: true });
  const staging = makeScratchDir(bootDir, '.installer-new');
  try {
    const base = args.base.record;
    const agent = args.agent.record;
    copyFileSync(join(args.base.dir, base.kernel.file), join(staging, KERNEL_ARTIFACT));
    const extras = args.extras?.record;
    const layers = [args.base, ...(args.extras ? [args.extras] : []), args.agent];
    const initramfs = await concatenate(
      layers.map((l) => join(l.dir, l.record.file)),
      join(staging, INITRAMFS_ARTIFACT),
    );
    const manifest: InstallerManifest = {
      format: 1,
      builderVersion: BUILDER_VERSION,
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - args.started,
      inputs: {
        suite: base.inputs.suite,
        mirror: base.inputs.mirror,
        packages: base.inputs.packages,
        compression: base.inputs.compression,
        node: { ...base.inputs.node, version: base.nodeVersion },
        agentBundle: { path: args.agentBundle, sha256: agent.inputs.agentSha256, bytes: statSync(args.agentBundle).size },
        initFilesSha256: base.inputs.initFilesSha256,
        ...(extras
          ? { extras: { packages: extras.inputs.packages, components: extras.inputs.components, ...(extras.inputs.modules ? { modules: extras.inputs.modules } : {}) } }
          : {}),
      },
      kernel: base.kernel,
      packages: extras ? sortedByName({ ...base.packages, ...extras.packages }) : base.packages,
      pruned: base.pruned,
      layers: layers.map((l) => layerEntry(l.record, l.cacheHit)),
      artifacts: {
        kernel: { file: KERNEL_ARTIFACT, bytes: base.kernel.bytes, sha256: base.kernel.sha256 },
        initramfs: { file: INITRAMFS_ARTIFACT, ...initramfs },
      },
    };
    writeFileSync(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);

    // NOTE: Node has no renameat2(RENAME_EXCHANGE); between the two renames (microseconds)
    // the directory is absent, which the boot service answers with a 404 and iPXE retries.
    const previous = `${args.outDir}.old-${process.pid}`;
    if (existsSync(args.outDir)) renameSync(args.outDir, previous);
    renameSync(staging, args.outDir);
    await removeScratchDir(previous);
    return manifest;
  } finally {
    await removeScratchDir(staging);
  }
}

const sortedByName = (packages: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function layerEntry(record: LayerRecord, cacheHit: boolean): InstallerManifest['layers'][number] {
  return {
    name: record.name,
    key: record.key,
    file: `${record.name}/${record.key}/${record.file}`,
    bytes: record.bytes,
    uncompressedBytes: record.uncompressedBytes,
    sha256: record.sha256,
    builtAt: record.builtAt,
    buildMs: record.buildMs,
    cacheHit,
  };
}

async function concatenate(parts: string[], output: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const out = createWriteStream(output);
  let bytes = 0;
  try {
    for (const part of parts) {
      for await (const chunk of createReadStream(part, { highWaterMark: 1 << 20 })) {
        const buffer = chunk as Buffer;
        hash.update(buffer);
        bytes += buffer.length;
        if (!out.write(buffer)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    }
  } finally {
    await new Promise<void>((resolveEnd, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolveEnd())));
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Drops superseded layers, newest kept first; the layer in use is never removed. */
async function pruneCache(cacheDir: string, kind: LayerRecord['name'], inUse: string, keep: number): Promise<void> {
  const dir = join(cacheDir, kind);
  for (const key of supersededEntries(dir, keep, { inUse })) await removeScratchDir(join(dir, key));
}
