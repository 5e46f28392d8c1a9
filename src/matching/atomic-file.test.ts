import { chmod, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFilePreserving, writeFileAtomic } from './atomic-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plinth-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the content, keeps the permissions and leaves no temporary file', async () => {
    const path = join(dir, 'state');
    await writeFile(path, 'old');
    await chmod(path, 0o640);
    await writeFileAtomic(path, "[('hp', 1)]\n");
    expect(await readFile(path, 'utf8')).toBe("[('hp', 1)]\n");
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual(['state']);
  });

  it('creates a missing file', async () => {
    await writeFileAtomic(join(dir, 'new.cmdb'), '[]\n');
    expect(await readFile(join(dir, 'new.cmdb'), 'utf8')).toBe('[]\n');
  });

  it('replaces by rename: a reader holding the old file keeps the old content', async () => {
    const path = join(dir, 'x');
    await writeFile(path, 'before');
    const inode = (await stat(path)).ino;
    await writeFileAtomic(path, 'after');
    expect((await stat(path)).ino).not.toBe(inode);
  });
});

describe('copyFilePreserving', () => {
  it('copies content and modification time', async () => {
    const from = join(dir, 'a.cmdb');
    await writeFile(from, "generate({'ip': '10.0.0.1-3'})\n");
    const when = new Date('2014-03-01T10:00:00Z');
    await utimes(from, when, when);
    await copyFilePreserving(from, `${from}.orig`);
    expect(await readFile(`${from}.orig`, 'utf8')).toBe("generate({'ip': '10.0.0.1-3'})\n");
    expect((await stat(`${from}.orig`)).mtime.getTime()).toBe(when.getTime());
  });
});
