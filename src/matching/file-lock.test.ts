import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PlinthError } from '../core/errors.js';
import { acquireLock, withLock } from './file-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plinth-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) => stat(p).then(
  () => true,
  () => false,
);

describe('acquireLock', () => {
  it('creates the lock file with the holder pid and removes it on release', async () => {
    const path = join(dir, 'lock');
    const lock = await acquireLock(path);
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n`);
    await lock.release();
    await lock.release();
    expect(await exists(path)).toBe(false);
  });

  it('excludes a second holder until the timeout, then says which file to remove', async () => {
    const path = join(dir, 'lock');
    const first = await acquireLock(path);
    const second = acquireLock(path, { timeoutMs: 120, pollMs: 10 });
    await expect(second).rejects.toBeInstanceOf(PlinthError);
    await expect(second).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining(path) });
    await first.release();
    await (await acquireLock(path, { timeoutMs: 0 })).release();
  });

  it('respects a lock file another program created', async () => {
    const path = join(dir, 'lock');
    await writeFile(path, '');
    await expect(acquireLock(path, { timeoutMs: 50, pollMs: 10 })).rejects.toMatchObject({ code: 'timeout' });
    expect(await exists(path)).toBe(true);
  });

  it('reports other errors at once', async () => {
    await expect(acquireLock(join(dir, 'missing', 'lock'), { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('withLock', () => {
  it('releases the lock when the work throws', async () => {
    const path = join(dir, 'lock');
    await expect(withLock(path, {}, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await exists(path)).toBe(false);
    expect(await withLock(path, {}, async () => 42)).toBe(42);
  });

  it('runs holders one after the other', async () => {
    const path = join(dir, 'lock');
    const events: string[] = [];
    const job = (name: string) =>
      withLock(path, { pollMs: 5 }, async () => {
        events.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 30));
        events.push(`${name}-`);
      });
    await Promise.all([job('a'), job('b'), job('c')]);
    for (let i = 0; i < events.length; i += 2) expect(events[i + 1]).toBe(events[i]!.replace('+', '-'));
  });
});
