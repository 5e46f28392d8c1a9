import { createHash } from 'node:crypto';
import type { Db } from '../store/database.js';
import { newSecret } from '../core/ids.js';
import { ACTIVE_RUN } from './runs.js';

/**
 * Per-run tokens: what the installer (and later the installed OS) authenticates with. A
 * token is minted when the boot service hands out the installer for a run; only its hash is
 * stored, on the run. It works for that run's machine alone, and stops working when the run
 * ends (finishing a run clears the hash) or when a newer boot of the same run mints another.
 */
export const RUN_TOKEN_PREFIX = 'plrun';
const hash = (t: string) => createHash('sha256').update(t).digest('hex');

export async function mintRunToken(db: Db, runId: string): Promise<string> {
  const token = newSecret(RUN_TOKEN_PREFIX);
  await db.updateTable('runs').set({ token_hash: hash(token) }).where('id', '=', runId).execute();
  return token;
}

export interface RunPrincipal {
  runId: string;
  machineId: string;
  kind: string;
}

/** The active run a token belongs to, or null (unknown, superseded, or the run has ended). */
export async function verifyRunToken(db: Db, token: string): Promise<RunPrincipal | null> {
  if (!token.startsWith(`${RUN_TOKEN_PREFIX}_`)) return null;
  const row = await db
    .selectFrom('runs')
    .select(['id', 'machine_id', 'kind'])
    .where('token_hash', '=', hash(token))
    .where('status', 'in', ACTIVE_RUN)
    .executeTakeFirst();
  return row ? { runId: row.id, machineId: row.machine_id, kind: row.kind } : null;
}
