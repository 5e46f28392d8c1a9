import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The files the inspection reads: sysfs and procfs, as fallbacks when a tool is missing and
 * for things no tool prints (EFI, carrier). Every method answers null/false instead of
 * rejecting: a missing file is information.
 */
export interface FactsFs {
  /** The file's text, or null when it is missing or unreadable (sysfs answers EINVAL for some). */
  readText(path: string): Promise<string | null>;
  exists(path: string): Promise<boolean>;
  /** The names in a directory, or null when it is missing. */
  listDir(path: string): Promise<string[] | null>;
  /** The target of a symbolic link, or null. */
  readLink(path: string): Promise<string | null>;
}

/** The real filesystem. `root` prefixes every path, so a test can point it at a fake tree. */
export function nodeFactsFs(root = '/'): FactsFs {
  const at = (path: string): string => join(root, path);
  return {
    async readText(path) {
      try {
        return await readFile(at(path), 'utf8');
      } catch {
        return null;
      }
    },
    async exists(path) {
      try {
        await stat(at(path));
        return true;
      } catch {
        return false;
      }
    },
    async listDir(path) {
      try {
        return (await readdir(at(path))).sort();
      } catch {
        return null;
      }
    },
    async readLink(path) {
      try {
        return await readlink(at(path));
      } catch {
        return null;
      }
    },
  };
}
