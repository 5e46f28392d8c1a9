import type { Db } from '../store/database.js';
import { fromJson } from '../store/database.js';
import { appendEvent } from '../events/log.js';
import type { ProviderFailure } from '../providers/types.js';
import type { JobResult } from './jobs.js';

/**
 * An appliance's health, from what its provider calls said about the appliance itself:
 * `ok` (a call got through), `auth` (its credentials were refused), `unreachable` (no
 * connection, or no answer in time), `error` (it answered with failures), `unknown` (no call
 * has said yet, or its settings changed since). Failures about one request (`unsupported`,
 * `not-found`) say nothing about the appliance and leave its health as it is.
 */
export const APPLIANCE_HEALTH = ['unknown', 'ok', 'auth', 'unreachable', 'error'] as const;
export type ApplianceHealth = (typeof APPLIANCE_HEALTH)[number];

const BY_FAILURE: Partial<Record<ProviderFailure | string, ApplianceHealth>> = {
  auth: 'auth',
  timeout: 'unreachable',
  unreachable: 'unreachable',
  transient: 'error',
  protocol: 'error',
};

/** The health a provider failure means, or null when it says nothing about the appliance. */
export function healthOfFailure(failure: string): ApplianceHealth | null {
  return BY_FAILURE[failure] ?? null;
}

/** What one finished job says about its appliance's health (null: nothing). */
export function healthOfOutcome(outcome: { status: 'succeeded'; result: JobResult } | { status: 'failed'; error: { failure: string; message: string } }): { health: ApplianceHealth; error: string | null } | null {
  if (outcome.status === 'failed') {
    const health = healthOfFailure(outcome.error.failure);
    return health ? { health, error: outcome.error.message } : null;
  }
  const failed = (outcome.result as { error?: { failure: string; message: string } }).error;
  if (failed) {
    const health = healthOfFailure(failed.failure);
    return health ? { health, error: failed.message } : null;
  }
  return { health: 'ok', error: null };
}

/** One entry of an appliance's history (health changes, updates, machines moved). */
export interface ApplianceEvent {
  id: number;
  applianceId: string;
  at: string;
  actor: string;
  action: string;
  reason: string | null;
  details: Record<string, unknown> | null;
}

/** An appliance event into the one event log, typed `appliance.<action>` (`appliance-` dropped). */
export async function recordApplianceEvent(db: Db, e: Omit<ApplianceEvent, 'id'>): Promise<void> {
  await appendEvent(db, { ...e, type: `appliance.${e.action.replace(/^appliance-/, '')}` });
}

/** An appliance's events, oldest first, after event id `after`. */
export async function listApplianceEvents(db: Db, applianceId: string, page: { limit: number; after?: number }): Promise<ApplianceEvent[]> {
  let q = db.selectFrom('events').selectAll().where('appliance_id', '=', applianceId);
  if (page.after !== undefined) q = q.where('id', '>', page.after);
  const rows = await q.orderBy('id').limit(page.limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    applianceId: r.appliance_id ?? applianceId,
    at: r.at,
    actor: r.actor,
    action: r.action,
    reason: r.reason,
    details: fromJson(r.details, null),
  }));
}

/**
 * Sets an appliance's health when it changed, with an `appliance-health` event; writes
 * nothing when it is already so (every successful call of a healthy appliance costs one
 * read). The update is conditional on the health read, so two controllers finishing jobs
 * of one appliance at once record one change, not two. Returns the previous health when it changed.
 */
export async function setApplianceHealth(
  db: Db,
  applianceId: string,
  next: { health: ApplianceHealth; error: string | null },
  at: string,
  actor: string,
): Promise<ApplianceHealth | null> {
  const row = await db.selectFrom('appliances').select(['health']).where('id', '=', applianceId).executeTakeFirst();
  if (!row || row.health === next.health) return null;
  const res = await db
    .updateTable('appliances')
    .set({ health: next.health, health_error: next.error, health_at: at })
    .where('id', '=', applianceId)
    .where('health', '=', row.health)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) return null;
  await recordApplianceEvent(db, {
    applianceId,
    at,
    actor,
    action: 'appliance-health',
    reason: next.error ? `${row.health} → ${next.health}: ${next.error}` : `${row.health} → ${next.health}`,
    details: { from: row.health, to: next.health },
  });
  return row.health as ApplianceHealth;
}
