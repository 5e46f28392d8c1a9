import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { InstallerCompression } from './cpio-archive.js';

/** A file the build produced, as recorded in a manifest. */
export interface ArtifactRecord {
  /**
   * Relative path: to DATA_DIR/boot/installer for `artifacts`, to the layer's own cache
   * directory in a layer.json, to DATA_DIR/cache/installer for the manifest's `layers`.
   */
  file: string;
  bytes: number;
  sha256: string;
}

/** One initramfs layer (a compressed cpio archive), kept in the build cache. */
export interface LayerRecord extends ArtifactRecord {
  name: 'base' | 'extras' | 'agent';
  /** Cache key: a hash of everything the layer is built from. */
  key: string;
  /** Size of the unpacked cpio archive (what the kernel unpacks into memory). */
  uncompressedBytes: number;
  builtAt: string;
  buildMs: number;
}

/** What the base layer was built from and what it contains (cache/installer/base/KEY/layer.json). */
export interface BaseLayerRecord extends LayerRecord {
  name: 'base';
  inputs: BaseLayerInputs;
  kernel: KernelRecord;
  /** name → version of every Debian package installed in the root filesystem. */
  packages: Record<string, string>;
  nodeVersion: string;
  pruned: { packages: string[]; paths: string[] };
}

export interface BaseLayerInputs {
  builderVersion: string;
  arch: 'amd64';
  suite: string;
  mirror: string;
  packages: string[];
  prunedPackages: string[];
  prunedPaths: string[];
  moduleRules: string[];
  initFilesSha256: string;
  node: { path: string; sha256: string };
  compression: InstallerCompression;
}

export interface KernelRecord extends ArtifactRecord {
  /** The Debian package the kernel came from (linux-image-amd64 depends on it). */
  package: string;
  version: string;
  /** uname -r */
  release: string;
  /** Modules kept in the base layer (with their dependencies). */
  modules: number;
}

/** The site's packages and firmware over a base layer (cache/installer/extras/KEY/layer.json). */
export interface ExtrasLayerRecord extends LayerRecord {
  name: 'extras';
  /**
   * baseKey: the base layer installed over; packages: the site's, sorted; components: the
   * archive's, main first; modules: the site's module rules (absent: none, so that a layer of
   * packages alone keeps its key).
   */
  inputs: { builderVersion: string; baseKey: string; packages: string[]; components: string[]; modules?: string[]; compression: InstallerCompression };
  /** name → version of every Debian package this layer installed or upgraded. */
  packages: Record<string, string>;
  /** How many paths the layer holds (added or changed over the base). */
  paths: number;
}

export interface AgentLayerRecord extends LayerRecord {
  name: 'agent';
  /** caBundleSha256: of the CA bundle placed beside the agent (absent: none). */
  inputs: { builderVersion: string; agentSha256: string; compression: InstallerCompression; caBundleSha256?: string };
}

/**
 * DATA_DIR/boot/installer/manifest.json: what the boot service serves and how it was made.
 * `layers[].cacheHit` tells, for the build that wrote this manifest, which layers were
 * taken from the cache and which were built.
 */
export interface InstallerManifest {
  format: 1;
  builderVersion: string;
  /** When this manifest (and the files next to it) were written. */
  builtAt: string;
  buildMs: number;
  inputs: {
    suite: string;
    mirror: string;
    packages: string[];
    compression: InstallerCompression;
    node: { path: string; sha256: string; version: string };
    agentBundle: { path: string; sha256: string; bytes: number };
    initFilesSha256: string;
    /** The site's packages, firmware and module rules in the extras layer, and the archive components the packages came from (absent: none). */
    extras?: { packages: string[]; components: string[]; modules?: string[] };
  };
  kernel: KernelRecord;
  /** name → version of every Debian package in the installer (the base layer's and the extras layer's). */
  packages: Record<string, string>;
  pruned: { packages: string[]; paths: string[] };
  /** In the order they are concatenated into the initramfs; `file` is relative to the cache. */
  layers: (LayerRecord & { cacheHit: boolean })[];
  artifacts: { kernel: ArtifactRecord; initramfs: ArtifactRecord };
}

export const MANIFEST_FILE = 'manifest.json';

export function installerDir(dataDir: string): string {
  return join(dataDir, 'boot', 'installer');
}

export function installerCacheDir(dataDir: string): string {
  return join(dataDir, 'cache', 'installer');
}

export function readManifest(dir: string): InstallerManifest | null {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return null;
  try {
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as InstallerManifest;
    return manifest.format === 1 ? manifest : null;
  } catch {
    return null;
  }
}

export interface InstallerArtifact {
  path: string;
  bytes: number;
  sha256: string;
}

export interface InstallerArtifacts {
  dir: string;
  kernel: InstallerArtifact;
  initramfs: InstallerArtifact;
  manifest: InstallerManifest;
}

/**
 * The built installer (paths, sizes and checksums from its manifest), or null when none is
 * built or its files do not match the manifest. Cheap: compares sizes, does not hash.
 */
export function installerArtifacts(dataDir: string): InstallerArtifacts | null {
  const dir = installerDir(dataDir);
  const manifest = readManifest(dir);
  if (!manifest) return null;
  const artifact = (record: ArtifactRecord): InstallerArtifact | null => {
    const path = join(dir, record.file);
    if (!existsSync(path) || statSync(path).size !== record.bytes) return null;
    return { path, bytes: record.bytes, sha256: record.sha256 };
  };
  const kernel = artifact(manifest.artifacts.kernel);
  const initramfs = artifact(manifest.artifacts.initramfs);
  if (!kernel || !initramfs) return null;
  return { dir, kernel, initramfs, manifest };
}
