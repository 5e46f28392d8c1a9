import type { Db } from '../store/database.js';
import { afterId, pageOf, type Page } from '../core/pagination.js';
import { appendEvents, toLogEvent, type LogEvent } from '../events/log.js';

/** One entry of a machine's history: who did what, from which state to which, when and why. */
export type MachineEvent = { id: number; machineId: string } & Pick<LogEvent, 'at' | 'actor' | 'action' | 'fromState' | 'toState' | 'reason' | 'details'>;

/**
 * A machine event; `type` defaults to `machine.<action>` (the lifecycle engine says
 * `machine.transition`, power says `power.<action>`). It goes into the one event log.
 */
export type NewEvent = Omit<MachineEvent, 'id'> & { type?: string };

export async function recordEvent(db: Db, e: NewEvent): Promise<void> {
  await recordEvents(db, [e]);
}

/** Several machine events in one statement. */
export async function recordEvents(db: Db, events: readonly NewEvent[]): Promise<void> {
  await appendEvents(
    db,
    events.map(({ type, ...rest }) => ({ ...rest, type: type ?? `machine.${rest.action}` })),
  );
}

/** Events of a machine, oldest first, after event id `after`. */
export async function listEvents(db: Db, machineId: string, page: { limit: number; after?: number }): Promise<MachineEvent[]> {
  // The machine's own history: its transitions, changes and power notes (runs and the rest are in the event log).
  let q = db
    .selectFrom('events')
    .selectAll()
    .where('machine_id', '=', machineId)
    .where((eb) => eb.or([eb('type', 'like', 'machine.%'), eb('type', 'like', 'power.%')]));
  if (page.after !== undefined) q = q.where('id', '>', page.after);
  const rows = await q.orderBy('id').limit(page.limit).execute();
  return rows.map((r) => {
    const { at, actor, action, fromState, toState, reason, details } = toLogEvent(r);
    return { id: Number(r.id), machineId: r.machine_id ?? machineId, at, actor, action, fromState, toState, reason, details };
  });
}

/** A machine's history page by page, oldest first; the cursor is the one the previous page returned. */
export async function historyPage(db: Db, machineId: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<MachineEvent>> {
  const after = afterId(page.cursor);
  const rows = await listEvents(db, machineId, { limit: page.limit + 1, ...(after !== undefined ? { after } : {}) });
  return pageOf(rows, page.limit, (e) => String(e.id));
}
