import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { buildTestImage, isZero, LoopDevices, MiB, readDevice, serveImage, type TestImage } from './test-fixtures.js';
import { writeImage, type WriteImageOptions } from './write-image.js';

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
});
