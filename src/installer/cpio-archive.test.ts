import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compressorFor, layerFileName, listTree, packCpio } from './cpio-archive.js';

const dir = mkdtempSync(join(tmpdir(), 'plinth-cpio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeTree(): string {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'usr/lib/modules'), { recursive: true });
  writeFileSync(join(root, 'usr/lib/modules/a.ko'), 'module');
  writeFileSync(join(root, 'init'), '#!/bin/sh\n', { mode: 0o755 });
  symlinkSync('usr/lib', join(root, 'lib'));
  return root;
}

describe('initramfs cpio layers', () => {
  it('lists a tree sorted, directories first, without following symlinks', () => {
    expect(listTree(makeTree())).toEqual(['init', 'lib', 'usr', 'usr/lib', 'usr/lib/modules', 'usr/lib/modules/a.ko']);
  });

  it('packs a gzip-compressed newc archive the kernel can unpack', async () => {
    const root = join(dir, 'root');
    const out = join(dir, layerFileName('base', 'gzip-6'));
    const { uncompressedBytes } = await packCpio(root, out, 'gzip-6');
    const raw = execFileSync('gzip', ['-dc', out]);
    expect(raw.length).toBe(uncompressedBytes);
    expect(raw.subarray(0, 6).toString()).toBe('070701');
    const names = execFileSync('cpio', ['-t', '--quiet'], { input: raw }).toString().trim().split('\n');
    expect(names).toEqual(listTree(root));
  });

  it('uses only formats the kernel decompressor accepts', () => {
    expect(layerFileName('agent', 'zstd-19')).toBe('agent.cpio.zst');
    expect(compressorFor('xz-6')?.args).toContain('--check=crc32');
    expect(() => compressorFor('lz4-9' as never)).toThrow(/unknown/);
    expect(() => compressorFor('zstd-22')).toThrow(/not safe/);
    expect(compressorFor('none')).toBeNull();
  });
});
