// The source here is an in-memory stand-in for the controller (the integration test
// test/integration/site-cache.test.ts runs the real one): it lets a test hold a fetch open.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../core/logger.js';
import { CacheError, FileCache, type FileSource } from './file-cache.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const file = (n: number, fill: number) => Buffer.alloc(n, fill);

/** A source serving `files` by sha256; `gate` holds every fetch until opened; `fetches` counts them. */
function memorySource(files: Buffer[], o: { corrupt?: boolean } = {}) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const s = {
    fetches: 0,
    held: false,
    open: () => open(),
    source: {
      fetch: async (sha256: string) => {
        const f = files.find((b) => sha(b) === sha256);
        if (!f) throw new CacheError(404, 'no such file');
        s.fetches++;
        return {
          size: f.length,
          body: (async function* () {
            if (s.held) await gate;
            const out = Buffer.from(f);
            if (o.corrupt) out[0] = out[0]! ^ 1;
            yield out.subarray(0, 10);
            yield out.subarray(10);
          })(),
        };
      },
    } satisfies FileSource,
  };
  return s;
}

describe('FileCache', () => {
  const dirs: string[] = [];
  const cache = (limitBytes: number, source: FileSource) => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-filecache-'));
    dirs.push(dir);
    const c = new FileCache({ dir, limitBytes, source, log: createLogger('silent') });
    c.open();
    return { c, dir };
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('fetches a file once for every request that waits for it', async () => {
    const a = file(100, 1);
    const src = memorySource([a]);
    src.held = true;
    const { c } = cache(1000, src.source);
    const waiting = Promise.all([c.acquire(sha(a)), c.acquire(sha(a)), c.acquire(sha(a))]);
    src.open();
    const held = await waiting;
    expect(src.fetches).toBe(1);
    expect(held.map((h) => h.size)).toEqual([100, 100, 100]);
    expect(c.figures).toMatchObject({ misses: 3, hits: 0, fetches: 1, fetchedBytes: 100 });
    held.forEach((h) => h.release());
    (await c.acquire(sha(a))).release();
    expect(c.figures.hits).toBe(1);
  });

  it('prefetches a file once: a request during or after the fetch waits for it or hits', async () => {
    const a = file(100, 1);
    const src = memorySource([a]);
    src.held = true;
    const { c } = cache(1000, src.source);
    c.prefetch(sha(a));
    c.prefetch(sha(a));
    const during = c.acquire(sha(a));
    src.open();
    (await during).release();
    (await c.acquire(sha(a))).release();
    c.prefetch(sha(a));
    expect(src.fetches).toBe(1);
    expect(c.figures).toMatchObject({ fetches: 1, misses: 1, hits: 1 });
  });

  it('keeps nothing whose sha256 is not the one named', async () => {
    const a = file(100, 1);
    const { c, dir } = cache(1000, memorySource([a], { corrupt: true }).source);
    await expect(c.acquire(sha(a))).rejects.toMatchObject({ status: 502, message: expect.stringMatching(/^the controller sent bytes whose sha256 is [0-9a-f]{64}, not /) });
    expect(readdirSync(join(dir, 'files'))).toEqual([]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(c.fileCount).toBe(0);
  });

  it('evicts the least recently used file not being read, and refuses a fetch it has no room for', async () => {
    const [a, b, d] = [file(400, 1), file(400, 2), file(400, 3)];
    const { c, dir } = cache(1000, memorySource([a, b, d]).source);
    (await c.acquire(sha(a))).release();
    const holdB = await c.acquire(sha(b));
    // a is older but b is being read: a goes.
    (await c.acquire(sha(a))).release();
    const holdD = await c.acquire(sha(d));
    expect(readdirSync(join(dir, 'files')).sort()).toEqual([sha(b), sha(d)].sort());
    expect(c.usedBytes).toBe(800);
    // b and d both being read: no room for a.
    await expect(c.acquire(sha(a))).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/^no room for 400 B: /) });
    expect(c.usedBytes).toBeLessThanOrEqual(1000);
    holdB.release();
    holdD.release();
    (await c.acquire(sha(a))).release();
    expect(c.usedBytes).toBe(800);
    expect(c.figures.evictions).toBe(2);
  });

  it('refuses a file larger than the whole cache, and keeps verified files across restarts', async () => {
    const big = file(2000, 9);
    const a = file(100, 1);
    const src = memorySource([big, a]);
    const { c, dir } = cache(1000, src.source);
    await expect(c.acquire(sha(big))).rejects.toMatchObject({ status: 503, message: expect.stringMatching(/more than the whole cache/) });
    (await c.acquire(sha(a))).release();
    writeFileSync(join(dir, 'tmp', 'leftover'), 'x');
    const again = new FileCache({ dir, limitBytes: 1000, source: src.source, log: createLogger('silent') });
    again.open();
    expect(again.fileCount).toBe(1);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    (await again.acquire(sha(a))).release();
    expect(again.figures).toMatchObject({ hits: 1, fetches: 0 });
  });
});
