import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, readSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { buildTestImage, copyOnto, isZero, LoopDevices, MiB, must, readDevice, sh, type TestImage } from './test-fixtures.js';
import { wipeDisks } from './wipe.js';

/** Fills a device the test owns with random bytes in 4 MiB strides (every stride starts with 1 MiB of noise). */
function scribble(loops: LoopDevices, device: string, sizeBytes: number): void {
  loops.assertOurs(device);
  const fd = openSync(device, 'r+');
  try {
    for (let at = 0; at < sizeBytes; at += 4 * MiB) writeSync(fd, randomBytes(Math.min(MiB, sizeBytes - at)), 0, Math.min(MiB, sizeBytes - at), at);
  } finally {
    closeSync(fd);
  }
}

/** True when every byte of the backing file (the loop device's storage) is zero. */
function backingFileIsZero(file: string): boolean {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(4 * MiB);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return true;
      if (!isZero(buf.subarray(0, n))) return false;
    }
  } finally {
    closeSync(fd);
  }
}

async function nothingFound(device: string) {
  // blkid exits 2 when it finds no signature and no partition table; sfdisk finds no table.
  expect((await sh('blkid', ['--probe', device])).code).toBe(2);
  const dump = await sh('sfdisk', ['--dump', device]);
  expect(dump.code).not.toBe(0);
  expect(dump.stderr).toMatch(/does not contain a recognized partition table/);
  expect((await must('wipefs', ['--no-act', '--noheadings', device])).trim()).toBe('');
}

describe('wipeDisks', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  beforeAll(async () => {
    image = await buildTestImage(loops);
  });
  afterAll(async () => loops.detachAll());

  it('quick: no partition table, no signature, and the first and last 64 MiB are zeros', async () => {
    const size = 192 * MiB;
    const { device, name } = await loops.attach(size);
    scribble(loops, device, size);
    await copyOnto(loops, image.path, device);
    // A filesystem signature at the very end too (as an md 1.0 superblock or a backup GPT would be).
    await must('sgdisk', ['--move-second-header', device]);
    await must('partx', ['--update', device]);
    expect((await must('blkid', ['--probe', '--output', 'export', device]))).toMatch(/PTTYPE=gpt/);

    const lines: string[] = [];
    const [result] = await wipeDisks({ disks: [{ name }], mode: 'quick', log: (l) => lines.push(l) });

    await nothingFound(device);
    expect(isZero(await readDevice(loops, device, 0, 64 * MiB))).toBe(true);
    expect(isZero(await readDevice(loops, device, size - 64 * MiB, 64 * MiB))).toBe(true);
    // The kernel forgot the old partitions.
    expect((await must('lsblk', ['--noheadings', '--output', 'NAME', '--raw', device])).trim()).toBe(name);
    expect(result).toMatchObject({ disk: name, device, method: 'quick', bytes: 128 * MiB, discarded: true });
    expect(result!.seconds).toBeGreaterThan(0);
    expect(result!.verified).toMatch(/128\.0 MiB in 2 range\(s\) read back as zeros; no signature or partition table/);
    expect(lines[0]).toBe(`${name}: quick wipe of ${device} (192.0 MiB)`);
  });

  it('quick: zeroes a disk smaller than 128 MiB entirely', async () => {
    const size = 40 * MiB;
    const { device, name, file } = await loops.attach(size);
    scribble(loops, device, size);
    await copyOnto(loops, image.path, device);
    const [result] = await wipeDisks({ disks: [{ name }], mode: 'quick', log: () => undefined });
    expect(result!.bytes).toBe(size);
    await nothingFound(device);
    expect(backingFileIsZero(file)).toBe(true);
  });

  it('full: overwrites every byte with zeros where the disk has no secure erase, reporting progress', async () => {
    const size = 72 * MiB;
    const { device, name, file } = await loops.attach(size);
    scribble(loops, device, size);
    await copyOnto(loops, image.path, device);
    const lines: string[] = [];
    const progress: number[] = [];
    const [result] = await wipeDisks({ disks: [{ name }], mode: 'full', log: (l) => lines.push(l), onProgress: (p) => progress.push(p.bytesDone) });

    expect(result).toMatchObject({ disk: name, method: 'zero-fill', bytes: size });
    expect(lines).toContain(`${name}: no usable secure erase (${name} is neither NVMe nor SCSI/ATA); overwriting every byte with zeros`);
    expect(lines.some((l) => /zero-fill 50% \(36\.0 MiB of 72\.0 MiB, /.test(l))).toBe(true);
    expect(progress.at(-1)).toBe(size);
    // Every byte, read from the device and from its backing storage.
    expect(isZero(await readDevice(loops, device, 0, size))).toBe(true);
    expect(backingFileIsZero(file)).toBe(true);
    await nothingFound(device);
  });

  it('wipes disks side by side, and a failure names its disk while the others finish', async () => {
    const busy = await loops.attach(48 * MiB);
    const free = await loops.attach(48 * MiB);
    await copyOnto(loops, image.path, busy.device);
    await copyOnto(loops, image.path, free.device);
    await must('partx', ['--update', busy.device]);
    const dir = mkdtempSync(join(tmpdir(), 'wipe-busy-'));
    await must('mount', ['-o', 'ro', `${busy.device}p3`, dir]);
    try {
      const error = (await wipeDisks({ disks: [{ name: busy.name }, { name: free.name }], mode: 'quick', log: () => undefined }).catch((e: unknown) => e)) as StepError;
      expect(error).toBeInstanceOf(StepError);
      expect(error.code).toBe('disk');
      expect(error.message).toBe(`${busy.name}: in use (${busy.name}p3 is mounted at ${dir}); refusing to write to it`);
      expect(error.details['failed']).toEqual([busy.name]);
      // The mounted disk was left alone; the other one was wiped.
      expect((await sh('blkid', ['--probe', busy.device])).code).toBe(0);
      await nothingFound(free.device);
    } finally {
      await must('umount', [dir]);
      rmdirSync(dir);
    }
  });

  it('fails (disk) when there is nothing to wipe', async () => {
    const error = (await wipeDisks({ disks: [], mode: 'quick', log: () => undefined }).catch((e: unknown) => e)) as StepError;
    expect(error.code).toBe('disk');
    expect(error.message).toBe('no disks to wipe: inspection found none');
  });
});
