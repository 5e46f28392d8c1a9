import { sql, type Selectable } from 'kysely';
import type { EventsTable } from '../store/schema.js';
import type { Db, Store } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import { validation } from '../core/errors.js';

/**
 * One entry of the event log: what happened (`type`, `action`), to which machine or appliance,
 * who did it, when, and why. `seq` is the log's cursor: it grows with every event, in the order
 * events were committed, so a reader that remembers the last `seq` it saw misses nothing.
 *
 * Types (see docs/events.md): `machine.transition` (a lifecycle transition), `machine.<action>`
 * (enrolment, updates, identity, matching), `power.<action>`, `appliance.<action>`,
 * `run.<status>`, `run.step`, `image.<action>`, `security.<action>`.
 */
export interface LogEvent {
  seq: number;
  type: string;
  at: string;
  machineId: string | null;
  applianceId: string | null;
  actor: string;
  action: string;
  fromState: string | null;
  toState: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}

export type NewLogEvent = Omit<LogEvent, 'seq' | 'machineId' | 'applianceId' | 'fromState' | 'toState'> &
  Partial<Pick<LogEvent, 'machineId' | 'applianceId' | 'fromState' | 'toState'>>;

/**
 * Appends an event. Called with the transaction of the change it records, it commits or rolls
 * back with that change. The event gets its `seq` after commit (sequenceEvents).
 */
export async function appendEvent(db: Db, e: NewLogEvent): Promise<void> {
  await appendEvents(db, [e]);
}

/** Appends several events in one statement (a list enrolled at once), as `appendEvent` does one. */
export async function appendEvents(db: Db, events: readonly NewLogEvent[]): Promise<void> {
  // 500 rows of 10 columns a statement stay well under SQLite's parameter limit.
  for (let i = 0; i < events.length; i += 500) await insertEvents(db, events.slice(i, i + 500));
}

async function insertEvents(db: Db, events: readonly NewLogEvent[]): Promise<void> {
  await db
    .insertInto('events')
    .values(
      events.map((e) => ({
        type: e.type,
        at: e.at,
        machine_id: e.machineId ?? null,
        appliance_id: e.applianceId ?? null,
        actor: e.actor,
        action: e.action,
        from_state: e.fromState ?? null,
        to_state: e.toState ?? null,
        reason: e.reason,
        details: toJson(e.details),
      })),
    )
    .execute();
}

/** Any key PostgreSQL's advisory locks of this database do not otherwise use. */
const SEQUENCER_LOCK = 0x706c6e7468; // "plnth"

/**
 * Numbers the committed events that have no `seq` yet, in insertion order, after the highest
 * `seq` given. Rows of transactions still open are invisible here and get a higher `seq` once
 * they commit, so `seq` order is commit order: on PostgreSQL, ids are handed out at insert but
 * transactions commit in any order, and a reader following ids would skip a late commit.
 * Sequencers are serialised (an advisory lock on PostgreSQL, the write lock on SQLite).
 * Returns how many events it numbered; cheap (one indexed read) when there are none.
 */
export async function sequenceEvents(store: Store): Promise<number> {
  const waiting = await store.db.selectFrom('events').select('id').where('seq', 'is', null).limit(1).executeTakeFirst();
  if (!waiting) return 0;
  return store.transaction(async (trx) => {
    if (store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${SEQUENCER_LOCK})`.execute(trx);
    const res = await sql`
      update events set seq = numbered.n
      from (
        select id, (select coalesce(max(seq), 0) from events) + row_number() over (order by id) as n
        from events where seq is null
      ) as numbered
      where events.id = numbered.id`.execute(trx);
    return Number(res.numAffectedRows ?? 0);
  });
}

export interface EventFilter {
  /** Only events of this machine (its id). */
  machineId?: string | undefined;
  /** Only events whose type starts with one of these (`machine.`, `power.`, `machine.transition`). */
  types?: readonly string[] | undefined;
}

/** Parses a `type` filter: comma-separated type prefixes; empty: every type. */
export function parseTypes(text: string | undefined, field = 'type'): string[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const types = text.split(',').map((t) => t.trim());
  for (const t of types) if (!/^[a-z*][a-z0-9.*-]*$/.test(t)) throw validation(field, `'${t}' is not an event type or type prefix (e.g. machine.transition, power.)`);
  return types.includes('*') ? undefined : types;
}

/** True when `type` is selected by the prefixes (`undefined`: all). */
export function typeMatches(type: string, types: readonly string[] | undefined): boolean {
  return !types || types.some((t) => type.startsWith(t));
}

const likePrefix = (p: string) => `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Events after `after` (a `seq`; 0: from the start), oldest first, at most `limit`. Numbers
 * waiting events first, so what a writer committed before the call is in the answer.
 */
export async function readEvents(store: Store, q: EventFilter & { after: number; limit: number }): Promise<LogEvent[]> {
  await sequenceEvents(store);
  let query = store.db.selectFrom('events').selectAll().where('seq', 'is not', null).where('seq', '>', q.after);
  if (q.machineId !== undefined) query = query.where('machine_id', '=', q.machineId);
  if (q.types?.length) {
    const types = q.types;
    query = query.where((eb) => eb.or(types.map((t) => eb('type', 'like', sql<string>`${likePrefix(t)} escape '\\'`))));
  }
  const rows = await query.orderBy('seq').limit(q.limit).execute();
  return rows.map(toLogEvent);
}

/** The highest `seq` given so far (0: none). */
export async function headSeq(store: Store): Promise<number> {
  await sequenceEvents(store);
  const r = await store.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('head')).executeTakeFirst();
  return Number(r?.head ?? 0);
}

export function toLogEvent(r: Selectable<EventsTable>): LogEvent {
  return {
    seq: Number(r.seq),
    type: r.type,
    at: r.at,
    machineId: r.machine_id,
    applianceId: r.appliance_id,
    actor: r.actor,
    action: r.action,
    fromState: r.from_state,
    toState: r.to_state,
    reason: r.reason,
    details: fromJson(r.details, null),
  };
}
