import { openSync, closeSync, fstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { PlinthError } from '../core/errors.js';
import type { HostTool } from '../build/host-tools.js';
import { runTool, startTool } from '../build/process.js';
import { installerTool } from './tools.js';

/**
 * initramfs layers are newc cpio archives, each compressed on its own: the kernel unpacks
 * concatenated archives in order, later files overriding earlier ones. Debian's kernel can
 * unpack gzip, xz, zstd, lz4, lzo and bzip2.
 *
 * `zstd-10` means zstd at level 10; `none` stores the cpio uncompressed.
 * NOTE: lz4 is not offered: the kernel only reads lz4's legacy frames, which have no end
 * marker, so a layer after an lz4 layer fails to unpack ("Decoding failed").
 */
export type InstallerCompression = `${'zstd' | 'gzip' | 'xz'}-${number}` | 'none';

interface Compressor {
  command: string;
  args: string[];
  extension: string;
  tool: HostTool;
}

/** The command that decompresses a layer to standard output (none for `none`). */
function decompressorFor(compression: InstallerCompression): { command: string; args: string[] } | null {
  const compressor = compressorFor(compression);
  return compressor ? { command: compressor.command, args: ['-d', '-c'] } : null;
}

export function compressorFor(compression: InstallerCompression): Compressor | null {
  if (compression === 'none') return null;
  const match = /^(zstd|gzip|xz)-(\d+)$/.exec(compression);
  if (!match) throw new PlinthError('validation', `unknown initramfs compression '${compression}' (use e.g. zstd-10, gzip-6, xz-6, none)`);
  const level = Number(match[2]);
  switch (match[1]) {
    case 'zstd':
      // NOTE: levels above 19 (--ultra) use windows of up to 128 MB, more than the
      // kernel's initramfs decompressor is guaranteed to handle; stay at 19 or below.
      if (level > 19) throw new PlinthError('validation', 'zstd levels above 19 are not safe for an initramfs');
      return { command: 'zstd', args: ['-q', `-${level}`, '-T0', '-c'], extension: 'zst', tool: { need: 'zstd', debianPackage: 'zstd' } };
    case 'gzip':
      return { command: 'gzip', args: [`-${level}`, '-n', '-c'], extension: 'gz', tool: { need: 'gzip', debianPackage: 'gzip' } };
    case 'xz':
      // NOTE: the kernel's xz decoder only verifies CRC32 (xz defaults to CRC64), and one
      // thread keeps the stream to a single block.
      return { command: 'xz', args: [`-${level}`, '--check=crc32', '-T1', '-c'], extension: 'xz', tool: { need: 'xz', debianPackage: 'xz-utils' } };
    default:
      throw new PlinthError('validation', `unknown initramfs compression '${compression}'`);
  }
}

export function hostToolsForCompression(compression: InstallerCompression): HostTool[] {
  const compressor = compressorFor(compression);
  return [{ need: 'cpio', debianPackage: 'cpio' }, ...(compressor ? [compressor.tool] : [])];
}

export function layerFileName(name: string, compression: InstallerCompression): string {
  const compressor = compressorFor(compression);
  return compressor ? `${name}.cpio.${compressor.extension}` : `${name}.cpio`;
}

/**
 * Every path below `root`, relative and sorted, directories before their contents.
 * Symbolic links are listed, never followed (the Debian root has /lib -> usr/lib).
 */
export function listTree(root: string): string[] {
  const paths: string[] = [];
  const walk = (relative: string) => {
    const entries = readdirSync(join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      paths.push(path);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk('');
  return paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Packs `root` (or only `paths` below it, relative, parents before their contents) into a
 * compressed newc cpio archive at `outputPath`. Returns the size of the uncompressed archive
 * (what the kernel unpacks into memory). cpio keeps owners, modes, device nodes, hard links
 * and modification times.
 */
export async function packCpio(
  root: string,
  outputPath: string,
  compression: InstallerCompression,
  signal?: AbortSignal,
  paths: string[] = listTree(root),
): Promise<{ uncompressedBytes: number }> {
  const compressor = compressorFor(compression);
  const out = openSync(outputPath, 'w', 0o644);
  try {
    const list = paths.map((path) => `${path}\0`).join('');
    const cpio = startTool('cpio', ['--null', '--create', '--format=newc', '--reproducible', '--quiet'], {
      ...installerTool(signal),
      cwd: root,
      input: list,
      stdout: compressor ? 'pipe' : out,
    });
    if (!compressor) {
      await cpio.result;
      return { uncompressedBytes: fstatSync(out).size };
    }
    let uncompressedBytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        uncompressedBytes += chunk.length;
        done(null, chunk);
      },
    });
    const compress = startTool(compressor.command, compressor.args, {
      ...installerTool(signal),
      input: cpio.stdout!.pipe(counter),
      stdout: out,
    });
    // The compressor has read all the counter passed on once it exits.
    await Promise.all([cpio.result, compress.result]);
    return { uncompressedBytes };
  } finally {
    closeSync(out);
  }
}

/**
 * Unpacks a layer written by packCpio into the directory `root` (which must exist), with
 * owners, modes, device nodes and modification times (owners need root).
 */
export async function unpackCpio(archive: string, root: string, compression: InstallerCompression, signal?: AbortSignal): Promise<void> {
  const decompressor = decompressorFor(compression);
  const cpioArgs = ['--extract', '--make-directories', '--preserve-modification-time', '--no-absolute-filenames', '--quiet'];
  if (!decompressor) {
    await runTool('cpio', [...cpioArgs, '-F', archive], { ...installerTool(signal), cwd: root });
    return;
  }
  const decompress = startTool(decompressor.command, [...decompressor.args, archive], { ...installerTool(signal), stdout: 'pipe' });
  const cpio = startTool('cpio', cpioArgs, { ...installerTool(signal), cwd: root, input: decompress.stdout! });
  await Promise.all([decompress.result, cpio.result]);
}
