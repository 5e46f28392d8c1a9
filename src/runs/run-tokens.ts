import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../store/database.js';
import { ACTIVE_RUN } from './runs.js';

/**
 * Run tickets and claims: what the installer's agent authenticates with.
 *
 * Boot endpoints are public, so whatever a boot request hands out, anyone who knows a
 * machine's MAC can get too. A boot request therefore stores nothing: it hands out a
 * *ticket*, `plrun_<runId>.<epoch>.<nonce>.<mac>`, signed with a key derived from the
 * controller's secret key and bound to the run's current `token_epoch`. The first agent call
 * with a valid ticket *claims* the run: sha256(ticket) goes into `runs.token_hash` by a
 * conditional update, and from then on that exact ticket — and no other — is the run's
 * token. Another ticket of the same epoch (an impostor who booted with the same MAC) is
 * refused, and cannot unseat the agent that claimed first. Only the controller re-arms a run
 * (`rearmRun`: epoch + 1, claim cleared): its own power-on or power-cycle of the machine, an
 * operator's retry (a new run), a new run. The token dies with the run (finishing clears it).
 */
export const RUN_TOKEN_PREFIX = 'plrun';
export const TICKET_KEY_PURPOSE = 'run-ticket';
const hash = (t: string) => createHash('sha256').update(t).digest('hex');
const sign = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest('base64url');

/** A fresh ticket for the run's current epoch. Stores nothing. */
export function mintTicket(key: Buffer, runId: string, epoch: number): string {
  const body = `${runId}.${epoch}.${randomBytes(16).toString('base64url')}`;
  return `${RUN_TOKEN_PREFIX}_${body}.${sign(key, body)}`;
}

/** The run and epoch a ticket was signed for, or null when it is not a ticket of this controller's key. */
export function openTicket(key: Buffer, token: string): { runId: string; epoch: number } | null {
  if (!token.startsWith(`${RUN_TOKEN_PREFIX}_`) || token.length > 256) return null;
  const parts = token.slice(RUN_TOKEN_PREFIX.length + 1).split('.');
  if (parts.length !== 4 || !/^\d{1,9}$/.test(parts[1]!)) return null;
  const body = parts.slice(0, 3).join('.');
  const given = Buffer.from(parts[3]!);
  const expected = Buffer.from(sign(key, body));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return { runId: parts[0]!, epoch: Number(parts[1]) };
}

export interface RunPrincipal {
  runId: string;
  machineId: string;
  kind: string;
}

/** The run's current epoch and whether an agent holds it, for the boot service. */
export async function runClaim(db: Db, runId: string): Promise<{ epoch: number; claimed: boolean } | null> {
  const row = await db.selectFrom('runs').select(['token_epoch', 'token_hash']).where('id', '=', runId).where('status', 'in', ACTIVE_RUN).executeTakeFirst();
  return row ? { epoch: Number(row.token_epoch), claimed: row.token_hash !== null } : null;
}

/**
 * The active run a token belongs to, or null. A ticket of the current epoch claims an
 * unclaimed run; a claimed run accepts only the ticket that claimed it (the same agent's
 * concurrent first calls — hello and a log batch — both pass).
 */
export async function verifyRunToken(db: Db, key: Buffer, token: string): Promise<RunPrincipal | null> {
  const ticket = openTicket(key, token);
  if (!ticket) return null;
  const h = hash(token);
  const read = () =>
    db.selectFrom('runs').select(['id', 'machine_id', 'kind', 'token_hash', 'token_epoch']).where('id', '=', ticket.runId).where('status', 'in', ACTIVE_RUN).executeTakeFirst();
  let row = await read();
  if (!row) return null;
  if (row.token_hash === null && Number(row.token_epoch) === ticket.epoch) {
    await claimRun(db, ticket.runId, ticket.epoch, token);
    row = await read();
    if (!row) return null;
  }
  return row.token_hash === h ? { runId: row.id, machineId: row.machine_id, kind: row.kind } : null;
}

/**
 * Makes the run claimable again by a ticket of the next epoch: the agent that held it (and
 * every ticket handed out before) stops working. Only for the controller's own reboots of the
 * machine; never for a boot request.
 */
export async function rearmRun(db: Db, runId: string): Promise<void> {
  await db
    .updateTable('runs')
    .set({ token_epoch: sql<number>`token_epoch + 1`, token_hash: null })
    .where('id', '=', runId)
    .where('status', 'in', ACTIVE_RUN)
    .execute();
}

/**
 * Re-arms the run only if it is active and no agent holds it; false otherwise (an agent
 * claimed it, or it is over). For a controller's reset that must not pull a running agent
 * from under its run.
 */
export async function rearmUnclaimedRun(db: Db, runId: string): Promise<boolean> {
  const r = await db
    .updateTable('runs')
    .set({ token_epoch: sql<number>`token_epoch + 1` })
    .where('id', '=', runId)
    .where('status', 'in', ACTIVE_RUN)
    .where('token_hash', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Claims an unclaimed run of this epoch for a ticket: the agent's first call, or the boot
 * service itself when it hands a native installer its script (there is no agent to claim).
 */
export async function claimRun(db: Db, runId: string, epoch: number, ticket: string): Promise<boolean> {
  const r = await db
    .updateTable('runs')
    .set({ token_hash: hash(ticket) })
    .where('id', '=', runId)
    .where('token_hash', 'is', null)
    .where('token_epoch', '=', epoch)
    .where('status', 'in', ACTIVE_RUN)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
