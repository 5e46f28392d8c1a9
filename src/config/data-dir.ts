import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file that names a data directory: a random id written once, by the first controller that uses it. */
export const DATA_DIR_ID_FILE = 'data-dir.id';

/**
 * The data directory's id, created when absent. The controller reports it with the directory's
 * path (`GET /api/v1/controller`), and a CLI that finds the same id in the same path knows it
 * runs beside the controller and may write there; anywhere else it uploads instead.
 */
export function ensureDataDirId(dataDir: string): string {
  const path = join(dataDir, DATA_DIR_ID_FILE);
  const existing = readDataDirId(dataDir);
  if (existing) return existing;
  const id = randomUUID();
  try {
    writeFileSync(path, `${id}\n`, { flag: 'wx', mode: 0o644 });
    return id;
  } catch (e) {
    // Another controller on the same directory wrote it first: theirs is the id.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readDataDirId(dataDir) ?? id;
    throw e;
  }
}

/** The id in `dataDir`, or null when there is none (or it cannot be read from here). */
export function readDataDirId(dataDir: string): string | null {
  const path = join(dataDir, DATA_DIR_ID_FILE);
  try {
    return existsSync(path) ? readFileSync(path, 'utf8').trim() || null : null;
  } catch {
    return null;
  }
}
