/**
 * What `buildImage` accepts and returns, its defaults and the checks that reject bad input
 * before anything is mounted.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { validation } from '../../core/errors.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const DEBIAN_RELEASE = '12';
export const DEBIAN_SUITE = 'bookworm';
export const ARCHITECTURE = 'amd64';
export const DEFAULT_IMAGE_NAME = 'debian-12';
export const DEFAULT_IMAGE_SIZE = 3 * GiB;
/** The base system with a kernel, cloud-init and both boot loaders takes about 1 GiB. */
export const MIN_IMAGE_SIZE = 2 * GiB;
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

export type Firmware = 'bios' | 'uefi';

export interface BuildImageOptions {
  /** File name stem of the image: NAME.raw, NAME.manifest.json. */
  name: string;
  outputDir: string;
  /** Size of the virtual disk (the raw file is sparse). Rounded up to whole MiB. Default 3 GiB. */
  sizeBytes?: number;
  /** More Debian packages installed with the base system (`name` or `name=version`). */
  extraPackages?: string[];
  /** Host path of a script run inside the image (in the chroot) after it is configured. */
  postInstallScript?: string;
  /** Debian archive mirror for the build and the image's APT sources. */
  mirror?: string;
  /** Debian security archive; null leaves security updates out (e.g. for an offline mirror). */
  securityMirror?: string | null;
  /** Holds downloaded packages and base system snapshots across builds. */
  cacheDir: string;
  /** Ignore a cached base system snapshot even when its inputs match. */
  refreshBase?: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface ResolvedBuildOptions {
  name: string;
  outputDir: string;
  sizeBytes: number;
  extraPackages: string[];
  postInstallScript: string | null;
  mirror: string;
  securityMirror: string | null;
  cacheDir: string;
  refreshBase: boolean;
  log: (line: string) => void;
  signal: AbortSignal | undefined;
}

export interface ManifestPartition {
  number: number;
  /** GPT partition name. */
  name: string;
  /** sgdisk type code: EF02 BIOS boot, EF00 EFI system, 8304 Linux x86-64 root. */
  typeCode: string;
  partUuid: string;
  startBytes: number;
  sizeBytes: number;
  filesystem: 'none' | 'vfat' | 'ext4';
  label: string | null;
  fsUuid: string | null;
  mountPoint: string | null;
}

export interface ManifestPackage {
  name: string;
  version: string;
  architecture: string;
}

export interface ImageManifest {
  manifestVersion: 1;
  name: string;
  format: 'raw';
  sizeBytes: number;
  /** Bytes the sparse file occupies on the disk it was built on. */
  allocatedBytes: number;
  sha256: string;
  distribution: { id: 'debian'; release: string; suite: string; version: string };
  architecture: string;
  kernel: { version: string; package: string; packageVersion: string; commandLine: string };
  firmware: Firmware[];
  bootLoaders: { bios: string; uefi: string; secureBoot: boolean };
  cloudInit: { version: string; datasources: string[] };
  partitionTable: { type: 'gpt'; diskGuid: string; partitions: ManifestPartition[] };
  rootFilesystem: { label: string; uuid: string };
  packages: ManifestPackage[];
  inputs: {
    mirror: string;
    securityMirror: string | null;
    extraPackages: string[];
    postInstallScriptSha256: string | null;
    baseSnapshot: string;
    baseSnapshotReused: boolean;
  };
  builtAt: string;
  buildSeconds: number;
  builderVersion: number;
}

export interface BuiltImage {
  path: string;
  sha256: string;
  sizeBytes: number;
  format: 'raw';
  firmware: Firmware[];
  manifest: ImageManifest;
  manifestPath: string;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A Debian package name, optionally pinned to a version or a release (`name=1.2-3`, `name/bookworm-backports`). */
const PACKAGE_PATTERN = /^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+|\/[a-z0-9-]+)?$/;

function checkMirror(field: string, url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw validation(field, `'${url}' is not a URL (e.g. ${DEFAULT_MIRROR})`);
  }
  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) throw validation(field, `'${url}' must be an http, https or file URL`);
  return url.replace(/\/+$/, '');
}

export function resolveBuildOptions(options: BuildImageOptions): ResolvedBuildOptions {
  if (!NAME_PATTERN.test(options.name)) {
    throw validation('name', `'${options.name}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  const requested = options.sizeBytes ?? DEFAULT_IMAGE_SIZE;
  if (!Number.isFinite(requested) || requested < MIN_IMAGE_SIZE) {
    throw validation('sizeBytes', `at least ${MIN_IMAGE_SIZE / GiB} GiB is needed, got ${requested}`);
  }
  const extraPackages = [...new Set(options.extraPackages ?? [])].sort();
  for (const pkg of extraPackages) {
    if (!PACKAGE_PATTERN.test(pkg)) throw validation('extraPackages', `'${pkg}' is not a Debian package name`);
  }
  let postInstallScript: string | null = null;
  if (options.postInstallScript !== undefined) {
    postInstallScript = resolve(options.postInstallScript);
    if (!existsSync(postInstallScript) || !statSync(postInstallScript).isFile()) {
      throw validation('postInstallScript', `${options.postInstallScript} is not a file`);
    }
  }
  if (!options.cacheDir) throw validation('cacheDir', 'is required');
  if (!options.outputDir) throw validation('outputDir', 'is required');
  return {
    name: options.name,
    outputDir: resolve(options.outputDir),
    sizeBytes: Math.ceil(requested / MiB) * MiB,
    extraPackages,
    postInstallScript,
    mirror: checkMirror('mirror', options.mirror ?? DEFAULT_MIRROR),
    securityMirror:
      options.securityMirror === null ? null : checkMirror('securityMirror', options.securityMirror ?? DEFAULT_SECURITY_MIRROR),
    // NOTE: debootstrap only accepts an absolute --cache-dir.
    cacheDir: isAbsolute(options.cacheDir) ? options.cacheDir : resolve(options.cacheDir),
    refreshBase: options.refreshBase ?? false,
    log: options.log,
    signal: options.signal,
  };
}
