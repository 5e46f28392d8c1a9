import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, fstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PlinthError } from '../core/errors.js';
import { toolEnv } from './run-command.js';
import type { HostTool } from './host-tools.js';

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
      return { command: 'zstd', args: ['-q', `-${level}`, '-T0', '-c'], extension: 'zst', tool: { command: 'zstd', debianPackage: 'zstd' } };
    case 'gzip':
      return { command: 'gzip', args: [`-${level}`, '-n', '-c'], extension: 'gz', tool: { command: 'gzip', debianPackage: 'gzip' } };
    case 'xz':
      // NOTE: the kernel's xz decoder only verifies CRC32 (xz defaults to CRC64), and one
      // thread keeps the stream to a single block.
      return { command: 'xz', args: [`-${level}`, '--check=crc32', '-T1', '-c'], extension: 'xz', tool: { command: 'xz', debianPackage: 'xz-utils' } };
    default:
      throw new PlinthError('validation', `unknown initramfs compression '${compression}'`);
  }
}

export function hostToolsForCompression(compression: InstallerCompression): HostTool[] {
  const compressor = compressorFor(compression);
  return [{ command: 'cpio', debianPackage: 'cpio' }, ...(compressor ? [compressor.tool] : [])];
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
 * Packs `root` into a compressed newc cpio archive at `outputPath`. Returns the size of the
 * uncompressed archive (what the kernel unpacks into memory). cpio keeps owners, modes,
 * device nodes, hard links and modification times.
 */
export async function packCpio(
  root: string,
  outputPath: string,
  compression: InstallerCompression,
  signal?: AbortSignal,
): Promise<{ uncompressedBytes: number }> {
  const compressor = compressorFor(compression);
  const out = openSync(outputPath, 'w', 0o644);
  const children: ChildProcess[] = [];
  const onAbort = () => children.forEach((c) => c.kill('SIGTERM'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const cpio = spawn('cpio', ['--null', '--create', '--format=newc', '--reproducible', '--quiet'], {
      cwd: root,
      env: toolEnv(),
      stdio: ['pipe', compressor ? 'pipe' : out, 'pipe'],
    });
    children.push(cpio);
    const exits: Promise<void>[] = [exitOf(cpio, 'cpio')];
    let uncompressedBytes = 0;
    const piping: Promise<void>[] = [];
    if (compressor) {
      const compress = spawn(compressor.command, compressor.args, { env: toolEnv(), stdio: ['pipe', out, 'pipe'] });
      children.push(compress);
      exits.push(exitOf(compress, compressor.command));
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          uncompressedBytes += chunk.length;
          done(null, chunk);
        },
      });
      piping.push(pipeline(cpio.stdout!, counter, compress.stdin!));
    }
    const list = listTree(root).join('\0') + '\0';
    piping.push(
      new Promise<void>((resolve, reject) => {
        cpio.stdin!.on('error', reject);
        cpio.stdin!.end(list, () => resolve());
      }),
    );
    await Promise.all([...exits, ...piping]);
    if (signal?.aborted) throw new PlinthError('internal', 'installer build aborted while packing an initramfs layer');
    if (!compressor) uncompressedBytes = fstatSync(out).size;
    return { uncompressedBytes };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    closeSync(out);
  }
}

function exitOf(child: ChildProcess, name: string): Promise<void> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new PlinthError('internal', `${name}: ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => {
      if (code === 0) resolve();
      else reject(new PlinthError('internal', `${name} failed (${code === null ? `signal ${sig}` : `status ${code}`}): ${stderr.trim()}`));
    });
  });
}
