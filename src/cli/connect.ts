import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PlinthClient } from '../api/client.js';
import { ADMIN_TOKEN_FILE } from '../auth/tokens.js';
import { UsageError } from './errors.js';

/**
 * Where the CLI connects, in order of precedence: --url/--token flags, PLINTH_URL /
 * PLINTH_TOKEN, the CLI config file (PLINTH_CLI_CONFIG or ~/.config/plinth/cli.yaml with
 * `url`, `token` or `tokenFile`), then the defaults: http://127.0.0.1:7708 and the admin
 * token of a controller whose data directory is ./var (or PLINTH_DATA_DIR).
 */
export interface Connection {
  url: string;
  token: string | null;
  tokenSource: string;
}

export function cliConfigPath(env: NodeJS.ProcessEnv): string {
  return env.PLINTH_CLI_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'plinth', 'cli.yaml');
}

export function resolveConnection(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv): Connection {
  let file: { url?: string; token?: string; tokenFile?: string } = {};
  const path = cliConfigPath(env);
  if (existsSync(path)) {
    try {
      file = (parseYaml(readFileSync(path, 'utf8')) ?? {}) as typeof file;
    } catch (e) {
      throw new UsageError(`${path}: ${(e as Error).message}`);
    }
  }
  const url = flags.url ?? env.PLINTH_URL ?? file.url ?? 'http://127.0.0.1:7708';
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url / PLINTH_URL: '${url}' is not a URL (e.g. http://127.0.0.1:7708)`);
  }
  if (flags.token) return { url, token: flags.token, tokenSource: '--token' };
  if (env.PLINTH_TOKEN) return { url, token: env.PLINTH_TOKEN, tokenSource: 'PLINTH_TOKEN' };
  if (file.token) return { url, token: file.token, tokenSource: path };
  const candidates = [file.tokenFile, join(resolve(env.PLINTH_DATA_DIR ?? './var'), ADMIN_TOKEN_FILE)].filter(Boolean) as string[];
  for (const f of candidates) {
    try {
      return { url, token: readFileSync(f, 'utf8').trim(), tokenSource: f };
    } catch {
      // not readable here: try the next source
    }
  }
  return { url, token: null, tokenSource: 'none' };
}

export const clientFor = (c: Connection): PlinthClient => new PlinthClient({ url: c.url, token: c.token });
