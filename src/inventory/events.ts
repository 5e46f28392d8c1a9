import type { Db } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import { afterId, pageOf, type Page } from '../core/pagination.js';

/** One entry of a machine's history: who did what, from which state to which, when and why. */
export interface MachineEvent {
  id: number;
  machineId: string;
  at: string;
  actor: string;
  action: string;
  fromState: string | null;
  toState: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}

export type NewEvent = Omit<MachineEvent, 'id'>;

export async function recordEvent(db: Db, e: NewEvent): Promise<void> {
  await db
    .insertInto('events')
    .values({
      machine_id: e.machineId,
      at: e.at,
      actor: e.actor,
      action: e.action,
      from_state: e.fromState,
      to_state: e.toState,
      reason: e.reason,
      details: toJson(e.details),
    })
    .execute();
}

/** Events of a machine, oldest first, after event id `after`. */
export async function listEvents(db: Db, machineId: string, page: { limit: number; after?: number }): Promise<MachineEvent[]> {
  let q = db.selectFrom('events').selectAll().where('machine_id', '=', machineId);
  if (page.after !== undefined) q = q.where('id', '>', page.after);
  const rows = await q.orderBy('id').limit(page.limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    machineId: r.machine_id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    fromState: r.from_state,
    toState: r.to_state,
    reason: r.reason,
    details: fromJson(r.details, null),
  }));
}

/** A machine's history page by page, oldest first; the cursor is the one the previous page returned. */
export async function historyPage(db: Db, machineId: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<MachineEvent>> {
  const after = afterId(page.cursor);
  const rows = await listEvents(db, machineId, { limit: page.limit + 1, ...(after !== undefined ? { after } : {}) });
  return pageOf(rows, page.limit, (e) => String(e.id));
}
