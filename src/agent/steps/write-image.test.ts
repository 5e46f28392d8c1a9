import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { buildTestImage, isZero, LoopDevices, MiB, readDevice, serveImage, type TestImage } from './test-fixtures.js';
import { writeImage, type WriteImageOptions } from './write-image.js';
import { createHash, randomBytes } from 'node:crypto';
import { ChunkIndexer, type ChunkIndex } from '../../protocol/chunk-index.js';

/** Writing images onto real loop devices, served by a local HTTP server that can misbehave. */
describe('writeImage', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  let imageBytes: Buffer;

  beforeAll(async () => {
    image = await buildTestImage(loops);
    imageBytes = readFileSync(image.path);
  });
  afterAll(async () => loops.detachAll());

  const quick: Partial<WriteImageOptions> = { backoffMs: [5], sleep: async () => undefined, bufferBytes: 1 * MiB };

  async function target(sizeBytes = 48 * MiB) {
    const disk = await loops.attach(sizeBytes);
    loops.assertOurs(disk.device);
    return disk;
  }

  it('writes the image, sends the run token, verifies the checksum and reports throughput', async () => {
    const server = await serveImage(image.path);
    const { device } = await target();
    const lines: string[] = [];
    const progress: number[] = [];
    try {
      const result = await writeImage({
        url: server.url,
        sha256: image.sha256,
        sizeBytes: image.sizeBytes,
        device,
        token: 'plrun_secret',
        log: (l) => lines.push(l),
        onProgress: (p) => progress.push(p.bytesWritten),
      });
      expect(result).toMatchObject({ device, bytes: image.sizeBytes, sha256: image.sha256, attempts: 1, resumedAt: [] });
      expect(result.bytesPerSecond).toBeGreaterThan(0);
      expect(lines.at(-1)).toMatch(/^write-image: wrote 32\.0 MiB to \/dev\/loop\d+ in [\d.]+ s \([\d.]+ [KMG]iB\/s\), sha256 [0-9a-f]{64} verified$/);
      expect(progress.at(-1)).toBe(image.sizeBytes);
      expect(server.requests).toEqual([{ method: 'GET', range: undefined, ifRange: undefined, authorization: 'Bearer plrun_secret', acceptEncoding: 'identity' }]);
      const written = await readDevice(loops, device, 0, image.sizeBytes);
      expect(written.equals(imageBytes)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('resumes with a Range request after the connection drops, twice', async () => {
    const cuts = [5 * MiB + 123, 7 * MiB];
    const server = await serveImage(image.path, { cutAfter: (i) => cuts[i] ?? null });
    const { device } = await target();
    const lines: string[] = [];
    try {
      const result = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: (l) => lines.push(l), ...quick });
      expect(result.attempts).toBe(3);
      // Each resume starts where the bytes received so far end.
      expect(result.resumedAt).toEqual([cuts[0], cuts[0]! + cuts[1]!]);
      expect(server.requests.map((r) => [r.range, r.ifRange])).toEqual([
        [undefined, undefined],
        [`bytes=${cuts[0]}-`, '"image-v1"'],
        [`bytes=${cuts[0]! + cuts[1]!}-`, '"image-v1"'],
      ]);
      expect(lines.some((l) => /resuming from byte 5243003/.test(l))).toBe(true);
      expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('resumes from a server that ignores ranges by skipping what it sends again', async () => {
    const server = await serveImage(image.path, { ignoreRange: true, cutAfter: (i) => (i === 0 ? 3 * MiB : null) });
    const { device } = await target();
    const lines: string[] = [];
    try {
      const result = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: (l) => lines.push(l), ...quick });
      expect(result.resumedAt).toEqual([3 * MiB]);
      expect(lines.some((l) => /ignored the range request; skipping the first 3\.0 MiB/.test(l))).toBe(true);
      expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('fails with code image on a checksum mismatch, naming both sums, and zeroes the first MiB', async () => {
    const corrupt = `${image.path}.corrupt`;
    const bytes = Buffer.from(imageBytes);
    bytes[20 * MiB] = bytes[20 * MiB]! ^ 0xff;
    writeFileSync(corrupt, bytes);
    const server = await serveImage(corrupt);
    const { device } = await target();
    try {
      const error = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StepError);
      const e = error as StepError;
      expect(e.code).toBe('image');
      expect(e.message).toContain(`expected sha256 ${image.sha256}, got `);
      expect(e.details['actual']).toMatch(/^[0-9a-f]{64}$/);
      expect(e.details['actual']).not.toBe(image.sha256);
      expect(e.message).toMatch(/first MiB of loop\d+ .* zeroed/);
      // The device: no boot sector, no primary GPT, no backup GPT of the image; the rest was written.
      expect(isZero(await readDevice(loops, device, 0, MiB))).toBe(true);
      expect(isZero(await readDevice(loops, device, image.sizeBytes - MiB, MiB))).toBe(true);
      expect(isZero(await readDevice(loops, device, 48 * MiB - MiB, MiB))).toBe(true);
      expect((await readDevice(loops, device, MiB, 4 * MiB)).equals(imageBytes.subarray(MiB, 5 * MiB))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('fails with code image when the image is not there (HTTP 404), without touching the disk', async () => {
    const server = await serveImage(image.path, { status: () => 404 });
    const { device, file } = await target();
    writeFileSync(file, Buffer.alloc(MiB, 0xab), { flag: 'r+' });
    try {
      const error = (await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined, ...quick }).catch((e: unknown) => e)) as StepError;
      expect(error.code).toBe('image');
      expect(error.message).toBe(`image not found: GET ${server.url} answered HTTP 404`);
      expect(server.requests).toHaveLength(1);
      expect((await readDevice(loops, device, 0, MiB)).every((b) => b === 0xab)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('fails with code image when the image changes on the server between attempts', async () => {
    const server = await serveImage(image.path, { cutAfter: (i) => (i === 0 ? 2 * MiB : null), etag: (i) => (i === 0 ? '"v1"' : '"v2"') });
    const { device } = await target();
    try {
      const error = (await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined, ...quick }).catch((e: unknown) => e)) as StepError;
      expect(error.code).toBe('image');
      expect(error.message).toMatch(/^the image changed on the controller while it was being written \(ETag "v1", now "v2"\)/);
      expect(isZero(await readDevice(loops, device, 0, MiB))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('fails with code image when the server serves another size than the run says', async () => {
    const server = await serveImage(image.path);
    const { device } = await target();
    try {
      const error = (await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes - 512, device, log: () => undefined, ...quick }).catch((e: unknown) => e)) as StepError;
      expect(error.code).toBe('image');
      expect(error.message).toBe(`size mismatch: the run says the image has ${image.sizeBytes - 512} bytes; the controller serves ${image.sizeBytes} bytes`);
    } finally {
      await server.close();
    }
  });

  it('fails with code disk when the device is smaller than the image', async () => {
    const { device, name } = await target(16 * MiB);
    const error = (await writeImage({ url: 'http://127.0.0.1:9/never', sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined }).catch((e: unknown) => e)) as StepError;
    expect(error.code).toBe('disk');
    expect(error.message).toBe(`${name}: the image (32.0 MiB, ${image.sizeBytes} bytes) does not fit on it (16.0 MiB, ${16 * MiB} bytes)`);
  });

  it('gives up with code network after attempts in a row without progress', async () => {
    const { device } = await target();
    let calls = 0;
    const down: typeof fetch = async () => {
      calls++;
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.0.0.1:8080') });
    };
    const error = (await writeImage({ url: 'http://10.0.0.1:8080/image.raw', sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined, fetch: down, maxFruitlessAttempts: 3, ...quick }).catch((e: unknown) => e)) as StepError;
    expect(calls).toBe(3);
    expect(error.code).toBe('network');
    expect(error.message).toMatch(/^gave up fetching the image after 3 attempts in a row without progress, at byte 0 of \d+: GET .*: fetch failed: connect ECONNREFUSED/);
  });

  it('retries 5xx answers', async () => {
    const server = await serveImage(image.path, { status: (i) => (i < 2 ? 503 : null) });
    const { device } = await target();
    try {
      const result = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, log: () => undefined, ...quick });
      expect(result.attempts).toBe(3);
      expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
    } finally {
      await server.close();
    }
  });

  describe('with a chunk index', () => {
    const indexOf = (bytes: Buffer) => {
      const indexer = new ChunkIndexer();
      indexer.update(bytes);
      const index = indexer.finish();
      const body = Buffer.from(JSON.stringify(index));
      return { index, body, sha256: createHash('sha256').update(body).digest('hex') };
    };
    /** The byte ranges of runs of non-zero chunks, as Range headers ask for them. */
    const nonZeroRanges = (index: ChunkIndex, wanted = (_i: number) => true, gapChunks = 0) => {
      const ranges: string[] = [];
      const fetched = index.chunks.map((c, i) => !c.zero && wanted(i));
      const nextFetched = (from: number) => fetched.indexOf(true, from);
      for (let i = 0; i < index.chunks.length; ) {
        if (!fetched[i]) {
          i++;
          continue;
        }
        let last = i;
        for (;;) {
          while (last + 1 < index.chunks.length && fetched[last + 1]) last++;
          const next = nextFetched(last + 1);
          if (next < 0 || next - last - 1 > gapChunks) break;
          last = next;
        }
        const end = Math.min((last + 1) * index.chunkBytes, index.sizeBytes);
        ranges.push(`bytes=${i * index.chunkBytes}-${end === index.sizeBytes ? '' : end - 1}`);
        i = last + 1;
      }
      return ranges;
    };

    it('fetches only the non-zero chunks, writes zeros over what the disk held, and verifies every chunk', async () => {
      const { index, body, sha256 } = indexOf(imageBytes);
      const zeroChunks = index.chunks.filter((c) => c.zero).length;
      expect(zeroChunks).toBeGreaterThan(index.chunks.length / 2);
      const server = await serveImage(image.path, { files: { 'image.chunks': body } });
      const { device, file } = await target();
      // A reused disk: nothing on it reads as zeros.
      writeFileSync(file, Buffer.alloc(48 * MiB, 0xab), { flag: 'r+' });
      const lines: string[] = [];
      try {
        const result = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, token: 'plrun_secret', index: { url: `${server.origin}/image.chunks`, sha256 }, mergeGapBytes: 0, log: (l) => lines.push(l), ...quick });
        const nonZero = index.chunks.length - zeroChunks;
        expect(result.chunks).toEqual({ chunkBytes: index.chunkBytes, fetchedBytes: nonZero * index.chunkBytes, zeroFilledBytes: zeroChunks * index.chunkBytes, keptBytes: 0, repairedChunks: [], requests: nonZeroRanges(index).length, differential: false });
        expect(result.sha256).toBe(image.sha256);
        expect(server.requests.map((r) => r.range)).toEqual(nonZeroRanges(index));
        expect(server.requests.every((r) => r.authorization === 'Bearer plrun_secret')).toBe(true);
        expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
        expect(lines.at(-1)).toMatch(/zero-filled [\d.]+ MiB; every chunk verified against the index of sha256 [0-9a-f]{64}$/);
      } finally {
        await server.close();
      }
    });

    it('fetches short zero gaps with the chunks around them, and resumes a run cut in the middle of a chunk', async () => {
      const { index, body, sha256 } = indexOf(imageBytes);
      const server = await serveImage(image.path, { files: { 'image.chunks': body }, cutAfter: (i) => (i === 0 ? 1000 : null) });
      const { device } = await target();
      try {
        const result = await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, index: { url: `${server.origin}/image.chunks`, sha256 }, mergeGapBytes: 8 * MiB, log: () => undefined, ...quick });
        const nonZero = index.chunks.filter((c) => !c.zero).length * index.chunkBytes;
        expect(result.resumedAt).toEqual([1000]);
        // Gaps of up to 8 MiB of zero chunks fetched with their neighbours: fewer requests than runs of non-zero chunks.
        const merged = nonZeroRanges(index, () => true, (8 * MiB) / index.chunkBytes);
        expect(merged.length).toBeLessThan(nonZeroRanges(index).length);
        expect(server.requests.map((r) => r.range)).toEqual([merged[0], merged[0]!.replace(/^bytes=0-/, 'bytes=1000-'), ...merged.slice(1)]);
        expect(result.chunks!.requests).toBe(merged.length + 1);
        expect(result.chunks!.fetchedBytes).toBeGreaterThanOrEqual(nonZero);
        expect(result.chunks!.fetchedBytes + result.chunks!.zeroFilledBytes).toBe(image.sizeBytes);
        expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
      } finally {
        await server.close();
      }
    });

    it('fetches a chunk that arrives corrupted again, alone, and fails when it is corrupted twice', async () => {
      const { index, body, sha256 } = indexOf(imageBytes);
      const bad = index.chunks.findIndex((c, i) => i > 0 && !c.zero);
      const at = bad * index.chunkBytes + 100;
      const once = await serveImage(image.path, { files: { 'image.chunks': body }, corrupt: (i) => (i === 0 || i === 1 ? at : null) });
      const { device } = await target();
      try {
        const result = await writeImage({ url: once.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, index: { url: `${once.origin}/image.chunks`, sha256 }, log: () => undefined, ...quick });
        expect(result.chunks!.repairedChunks).toEqual([bad]);
        expect(once.requests.at(-1)!.range).toBe(`bytes=${bad * index.chunkBytes}-${(bad + 1) * index.chunkBytes - 1}`);
        expect((await readDevice(loops, device, 0, image.sizeBytes)).equals(imageBytes)).toBe(true);
      } finally {
        await once.close();
      }
      const always = await serveImage(image.path, { files: { 'image.chunks': body }, corrupt: () => at });
      const second = await target();
      try {
        const error = (await writeImage({ url: always.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device: second.device, index: { url: `${always.origin}/image.chunks`, sha256 }, log: () => undefined, ...quick }).catch((e: unknown) => e)) as StepError;
        expect(error).toBeInstanceOf(StepError);
        expect(error.code).toBe('image');
        expect(error.message).toBe(`checksum mismatch: chunk ${bad} of ${always.url} (bytes ${bad * index.chunkBytes}-${(bad + 1) * index.chunkBytes - 1}) does not match the image's chunk index, fetched twice`);
        expect(isZero(await readDevice(loops, second.device, 0, MiB))).toBe(true);
      } finally {
        await always.close();
      }
    });

    it('refuses an index whose checksum is not the one the run names, before writing anything', async () => {
      const { body } = indexOf(imageBytes);
      const server = await serveImage(image.path, { files: { 'image.chunks': body } });
      const { device, file } = await target();
      writeFileSync(file, Buffer.alloc(MiB, 0xab), { flag: 'r+' });
      try {
        const error = (await writeImage({ url: server.url, sha256: image.sha256, sizeBytes: image.sizeBytes, device, index: { url: `${server.origin}/image.chunks`, sha256: 'f'.repeat(64) }, log: () => undefined, ...quick }).catch((e: unknown) => e)) as StepError;
        expect(error.code).toBe('image');
        expect(error.message).toMatch(new RegExp(`^chunk index ${server.origin}/image.chunks: its sha256 is [0-9a-f]{64}, not the f{64} the run names$`));
        expect(server.requests).toEqual([]);
        expect((await readDevice(loops, device, 0, MiB)).every((b) => b === 0xab)).toBe(true);
      } finally {
        await server.close();
      }
    });

    it('differential: fetches only the chunks the disk does not hold', async () => {
      // Version 1 on the disk; version 2 differs in three places, one of them a zero chunk made non-zero.
      const v2 = Buffer.from(imageBytes);
      const { index: v1Index } = indexOf(imageBytes);
      const data = v1Index.chunks.map((c, i) => (c.zero ? -1 : i)).filter((i) => i > 0);
      const zero = v1Index.chunks.findIndex((c) => c.zero);
      const changed = [data[1]!, data.at(-1)!, zero];
      for (const c of changed) randomBytes(4096).copy(v2, c * v1Index.chunkBytes + 8192);
      const path = `${image.path}.v2`;
      writeFileSync(path, v2);
      const { index, body, sha256 } = indexOf(v2);
      const server = await serveImage(path, { files: { 'image.chunks': body } });
      const { device, file } = await target();
      writeFileSync(file, imageBytes, { flag: 'r+' });
      try {
        const result = await writeImage({ url: server.url, sha256: index.imageSha256, sizeBytes: v2.length, device, index: { url: `${server.origin}/image.chunks`, sha256 }, differential: true, mergeGapBytes: 0, log: () => undefined, ...quick });
        expect(result.chunks).toMatchObject({ fetchedBytes: 3 * index.chunkBytes, zeroFilledBytes: 0, keptBytes: v2.length - 3 * index.chunkBytes, differential: true });
        expect(server.requests.map((r) => r.range).sort()).toEqual(nonZeroRanges(index, (i) => changed.includes(i)).sort());
        expect((await readDevice(loops, device, 0, v2.length)).equals(v2)).toBe(true);
      } finally {
        await server.close();
      }
    });
  });
});
