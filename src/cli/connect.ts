import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PlinthClient } from '../api/client.js';
import { ADMIN_TOKEN_FILE } from '../auth/tokens.js';
import { UsageError } from './errors.js';
import { readCaBundle } from '../config/tls.js';

/**
 * Where the CLI connects, in order of precedence: --url/--token flags, PLINTH_URL /
 * PLINTH_TOKEN, the CLI config file (PLINTH_CLI_CONFIG or ~/.config/plinth/cli.yaml with
 * `url`, `token` or `tokenFile`), then the defaults: http://127.0.0.1:7708 and the admin
 * token of a controller whose data directory is ./var (or PLINTH_DATA_DIR). A private CA
 * to trust comes the same way: --ca-bundle, PLINTH_CA_BUNDLE, `caBundle` in the file.
 */
export interface Connection {
  url: string;
  token: string | null;
  tokenSource: string;
  /** PEM of the CA bundle to trust besides the system's, or null. */
  ca: string | null;
}

/** Reads a CA bundle named by a flag or variable; a bad one is a usage error naming where it came from. */
export function caBundleFrom(path: string | undefined, source: string): string | null {
  if (!path) return null;
  try {
    return readCaBundle(path, source);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function cliConfigPath(env: NodeJS.ProcessEnv): string {
  return env.PLINTH_CLI_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'plinth', 'cli.yaml');
}

export function resolveConnection(flags: { url?: string; token?: string; caBundle?: string }, env: NodeJS.ProcessEnv): Connection {
  const c = resolveToken(flags, env);
  const [caPath, caSource] = flags.caBundle
    ? [flags.caBundle, '--ca-bundle']
    : env.PLINTH_CA_BUNDLE
      ? [env.PLINTH_CA_BUNDLE, 'PLINTH_CA_BUNDLE']
      : [c.file.caBundle, `caBundle in ${cliConfigPath(env)}`];
  return { url: c.url, token: c.token, tokenSource: c.tokenSource, ca: caBundleFrom(caPath, caSource) };
}

type CliFile = { url?: string; token?: string; tokenFile?: string; caBundle?: string };

function resolveToken(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv): Omit<Connection, 'ca'> & { file: CliFile } {
  let file: CliFile = {};
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
  if (flags.token) return { url, token: flags.token, tokenSource: '--token', file };
  if (env.PLINTH_TOKEN) return { url, token: env.PLINTH_TOKEN, tokenSource: 'PLINTH_TOKEN', file };
  if (file.token) return { url, token: file.token, tokenSource: path, file };
  const candidates = [file.tokenFile, join(resolve(env.PLINTH_DATA_DIR ?? './var'), ADMIN_TOKEN_FILE)].filter(Boolean) as string[];
  for (const f of candidates) {
    try {
      return { url, token: readFileSync(f, 'utf8').trim(), tokenSource: f, file };
    } catch {
      // not readable here: try the next source
    }
  }
  return { url, token: null, tokenSource: 'none', file };
}

export const clientFor = (c: Connection): PlinthClient => new PlinthClient({ url: c.url, token: c.token, ca: c.ca });
