import { randomBytes } from 'node:crypto';
import { copyFile, open, rename, stat, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replacing a file so that readers see either the old or the new content, never a half
 * written one (decision 9): write a temporary file in the same directory, flush it, rename
 * it over the original. The original's permissions are kept.
 */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let mode = 0o644;
  try {
    mode = (await stat(path)).mode & 0o7777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  // Make the rename itself durable; not every platform lets a directory be opened for this.
  const dirHandle = await open(dir, 'r').catch(() => null);
  if (dirHandle) {
    await dirHandle.sync().catch(() => undefined);
    await dirHandle.close();
  }
}

/** Copies a file with its permissions and times, like Python's `shutil.copy2`. */
export async function copyFilePreserving(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const s = await stat(from);
  await utimes(to, s.atime, s.mtime);
}
