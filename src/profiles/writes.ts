import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import type { Db, Dialect, Store } from '../store/database.js';
import { uniqueViolation } from '../store/database.js';

/**
 * What the profile and pool services share: how a document's writes run (one transaction,
 * a name created twice at once reported as such) and how rows are locked for them.
 */

export type Outcome = 'created' | 'updated' | 'unchanged';
export interface ApplyOutcome {
  pools: { name: string; outcome: Outcome; entries: number }[];
  profiles: { name: string; outcome: Outcome; position: number }[];
}

const UNIQUE_FIELDS: Record<string, string> = {
  'profiles.name': 'profile name',
  profiles_name_key: 'profile name',
  'pools.name': 'pool name',
  pools_name_key: 'pool name',
};

/** Runs `fn` in one transaction: a bad document changes nothing. */
export async function writeTransaction<T>(store: Store, clock: Clock, fn: (trx: Db, at: string) => Promise<T>): Promise<T> {
  const at = iso(clock.now());
  try {
    return await store.transaction((trx) => fn(trx, at));
  } catch (e) {
    const which = uniqueViolation(e);
    // Two writers creating the same name at once: the database lets one win.
    if (which !== null && !(e instanceof PlinthError)) {
      throw new PlinthError('duplicate', `${UNIQUE_FIELDS[which] ?? which} was created by another request at the same time; apply again`, { details: { field: which }, cause: e });
    }
    throw e;
  }
}

/**
 * Creates or replaces one profile or pool named in the path, in its own transaction, and
 * returns it as read back. A body naming another one is refused before anything is read.
 */
export async function putNamed<B extends { name: string }, D, V>(
  store: Store,
  clock: Clock,
  what: 'profile' | 'pool',
  name: string,
  body: B,
  steps: { read: (body: B, field: string) => D; upsert: (trx: Db, draft: D, at: string) => Promise<{ outcome: Outcome }>; view: (trx: Db) => Promise<V> },
): Promise<{ view: V; outcome: Outcome }> {
  if (body.name !== name) throw validation('name', `'${body.name}' differs from the ${what} named in the path ('${name}')`);
  const draft = steps.read(body, 'body');
  return writeTransaction(store, clock, async (trx, at) => {
    const { outcome } = await steps.upsert(trx, draft, at);
    return { view: await steps.view(trx), outcome };
  });
}

/** Locks the rows read (PostgreSQL; SQLite's write transaction already excludes other writers). */
export function lockForUpdate<QB extends { forNoKeyUpdate(): QB }>(dialect: Dialect, qb: QB): QB {
  return dialect === 'postgres' ? qb.forNoKeyUpdate() : qb;
}

/** Pool names by id. */
export async function poolNames(db: Db): Promise<Map<string, string>> {
  const rows = await db.selectFrom('pools').select(['id', 'name']).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}
