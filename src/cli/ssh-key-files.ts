import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

/** The public keys in the files given with `--ssh-key` (one key a line, `#` comments and blank lines skipped). */
export function readSshKeyFiles(files: readonly string[]): string[] {
  return files.flatMap((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`--ssh-key: cannot read ${f} (${(e as NodeJS.ErrnoException).code})`);
    }
    const keys = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (keys.length === 0) throw new UsageError(`--ssh-key: ${f} holds no public key`);
    return keys;
  });
}
