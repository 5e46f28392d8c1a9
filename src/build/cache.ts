/**
 * What the build caches share: entries named by a cache key (digest.ts) in one directory,
 * of which only the newest few are kept, because each is tens to hundreds of MB.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sha256File } from './digest.js';
import { removeScratchDir } from './scratch.js';

/**
 * Entries of `dir` that `keep` newer ones supersede, by modification time; only names that
 * `select` accepts count, and `inUse` is never among them.
 */
export function supersededEntries(dir: string, keep: number, options: { inUse?: string; select?: (name: string) => boolean } = {}): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name !== options.inUse && (options.select?.(name) ?? true))
    .map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime)
    .slice(keep)
    .map((e) => e.name);
}

/** A file of a cache entry as its record lists it. */
export interface CachedFile {
  file: string;
  bytes: number;
  sha256: string;
}

/**
 * Writes the entry's record (JSON `recordFile`) into `built`, a directory finished in scratch
 * space on the same file system, and moves it to `final`, replacing an older one: the cache
 * never holds a half-written entry under its key.
 */
export async function publishEntry(built: string, final: string, recordFile: string, record: unknown): Promise<void> {
  writeFileSync(join(built, recordFile), `${JSON.stringify(record, null, 2)}\n`);
  mkdirSync(dirname(final), { recursive: true });
  await removeScratchDir(final);
  renameSync(built, final);
}

/**
 * The record (JSON file `recordFile` in `dir`) of a cached entry, or null unless every file
 * it lists is there with its size and sha256: a damaged entry is rebuilt, never used.
 */
export async function verifiedEntry<R>(dir: string, recordFile: string, filesOf: (record: R) => CachedFile[]): Promise<R | null> {
  const recordPath = join(dir, recordFile);
  if (!existsSync(recordPath)) return null;
  try {
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as R;
    for (const artifact of filesOf(record)) {
      const path = join(dir, artifact.file);
      if (!existsSync(path) || statSync(path).size !== artifact.bytes) return null;
      if ((await sha256File(path)) !== artifact.sha256) return null;
    }
    return record;
  } catch {
    return null;
  }
}
