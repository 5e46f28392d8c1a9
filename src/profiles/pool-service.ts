import { sql } from 'kysely';
import type { Store, Db, Dialect } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { PoolEntriesTable, PoolsTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { PlinthError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { updateMachineRows } from '../inventory/machine-rows.js';
import { isEntryUsed, type PyDict } from '../matching/index.js';
import { readApplyBody, readPool, type PoolDraft } from './documents.js';
import type { PoolEntryView, PoolInputBody, PoolView } from './schemas.js';
import { lockForUpdate, putNamed, writeTransaction, type ApplyOutcome, type Outcome } from './writes.js';

/**
 * Pools as the API and the CLI see them: reading them and their entries, applying pool
 * documents (entries matched by position: one held by a machine cannot change under it),
 * and deleting.
 */

const INSERT_CHUNK = 500;

/** Creates or replaces one pool by name, inside the caller's transaction. */
export async function upsertPool(trx: Db, dialect: Dialect, d: PoolDraft, field: string, at: string): Promise<ApplyOutcome['pools'][number]> {
  const existing = await lockForUpdate(dialect, trx.selectFrom('pools').selectAll().where('name', '=', d.name)).executeTakeFirst();
  const model = d.model ? JSON.stringify(d.model) : null;
  const entryRow = (poolId: string, position: number, e: PyDict): PoolEntriesTable => {
    const text = JSON.stringify(e);
    return { id: newId(), pool_id: poolId, position, data: text, original: text, used: isEntryUsed(e) ? 1 : 0, machine_id: null, allocated_at: null };
  };
  if (!existing) {
    const id = newId();
    await trx.insertInto('pools').values({ id, name: d.name, model, description: d.description, created_at: at, updated_at: at }).execute();
    for (let i = 0; i < d.entries.length; i += INSERT_CHUNK) {
      await trx
        .insertInto('pool_entries')
        .values(d.entries.slice(i, i + INSERT_CHUNK).map((e, j) => entryRow(id, i + j, e)))
        .execute();
    }
    return { name: d.name, outcome: 'created', entries: d.entries.length };
  }

  // Entries are matched by position: unchanged ones (held or not) are left alone, free ones
  // are replaced or removed, and one held by a machine cannot change under it.
  const rows = await trx
    .selectFrom('pool_entries')
    .leftJoin('machines', 'machines.id', 'pool_entries.machine_id')
    .selectAll('pool_entries')
    .select('machines.name as machine_name')
    .where('pool_entries.pool_id', '=', existing.id)
    .orderBy('pool_entries.position')
    .execute();
  let changed = model !== existing.model || d.description !== existing.description;
  const entryField = (i: number) => (d.model ? `${field}.generate` : `${field}.entries[${i}]`);
  const heldError = (i: number, machine: string, what: string) =>
    new PlinthError('conflict', `${entryField(i)}: entry ${i} of pool ${d.name} is held by machine ${machine}; it cannot be ${what} until the machine gives it back`, {
      details: { field: entryField(i), pool: d.name, position: i, machine },
    });
  const fresh: PoolEntriesTable[] = [];
  for (let i = 0; i < Math.max(rows.length, d.entries.length); i++) {
    const old = rows[i];
    const wanted = d.entries[i];
    if (old && wanted) {
      const text = JSON.stringify(wanted);
      if (old.original === text) continue;
      if (old.machine_id) throw heldError(i, old.machine_name ?? old.machine_id, 'changed');
      await trx.updateTable('pool_entries').set({ data: text, original: text, used: isEntryUsed(wanted) ? 1 : 0, allocated_at: null }).where('id', '=', old.id).execute();
    } else if (old) {
      if (old.machine_id) throw heldError(i, old.machine_name ?? old.machine_id, 'removed');
      await trx.deleteFrom('pool_entries').where('id', '=', old.id).execute();
    } else if (wanted) {
      fresh.push(entryRow(existing.id, i, wanted));
    }
    changed = true;
  }
  for (let i = 0; i < fresh.length; i += INSERT_CHUNK) await trx.insertInto('pool_entries').values(fresh.slice(i, i + INSERT_CHUNK)).execute();
  if (changed) await trx.updateTable('pools').set({ model, description: d.description, updated_at: at }).where('id', '=', existing.id).execute();
  return { name: d.name, outcome: changed ? 'updated' : 'unchanged', entries: d.entries.length };
}


export class PoolService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private async poolViews(db: Db, rows: PoolsTable[]): Promise<PoolView[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const counts = await db
      .selectFrom('pool_entries')
      .select([
        'pool_id',
        (eb) => eb.fn.countAll().as('total'),
        sql<number>`sum(case when machine_id is not null then 1 else 0 end)`.as('held'),
        sql<number>`sum(case when machine_id is null and used = 0 then 1 else 0 end)`.as('free'),
      ])
      .where('pool_id', 'in', ids)
      .groupBy('pool_id')
      .execute();
    const users = await db.selectFrom('profiles').select(['pool_id', 'name']).where('pool_id', 'in', ids).orderBy('position').orderBy('name').execute();
    const byPool = new Map(counts.map((c) => [c.pool_id, c]));
    return rows.map((r) => {
      const c = byPool.get(r.id);
      return {
        id: r.id,
        name: r.name,
        description: r.description,
        model: fromJson(r.model, null),
        entries: { total: Number(c?.total ?? 0), free: Number(c?.free ?? 0), held: Number(c?.held ?? 0) },
        profiles: users.filter((u) => u.pool_id === r.id).map((u) => u.name),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
    });
  }

  async listPools(): Promise<PoolView[]> {
    const rows = await this.store.db.selectFrom('pools').selectAll().orderBy('name').execute();
    return this.poolViews(this.store.db, rows);
  }

  async getPool(name: string, db: Db = this.store.db): Promise<PoolView> {
    const row = await db.selectFrom('pools').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound('pool', name);
    return (await this.poolViews(db, [row]))[0]!;
  }

  /** A page of a pool's entries in order, after position `after`. */
  async listEntries(name: string, page: { limit: number; after?: number }): Promise<{ items: PoolEntryView[]; nextCursor: string | null }> {
    const db = this.store.db;
    const pool = await db.selectFrom('pools').select('id').where('name', '=', name).executeTakeFirst();
    if (!pool) throw notFound('pool', name);
    let q = db
      .selectFrom('pool_entries')
      .leftJoin('machines', 'machines.id', 'pool_entries.machine_id')
      .select(['pool_entries.id', 'pool_entries.position', 'pool_entries.data', 'pool_entries.used', 'pool_entries.machine_id', 'pool_entries.allocated_at', 'machines.name as machine_name'])
      .where('pool_entries.pool_id', '=', pool.id);
    if (page.after !== undefined) q = q.where('pool_entries.position', '>', page.after);
    const rows = await q.orderBy('pool_entries.position').limit(page.limit + 1).execute();
    const items = rows.slice(0, page.limit).map((r) => ({
      id: r.id,
      position: Number(r.position),
      data: fromJson<Record<string, unknown>>(r.data, {}),
      used: Boolean(r.used),
      machine: r.machine_id ? { id: r.machine_id, name: r.machine_name ?? r.machine_id } : null,
      allocatedAt: r.allocated_at,
    }));
    return { items, nextCursor: rows.length > page.limit ? String(items[items.length - 1]!.position) : null };
  }

  /** Creates or replaces pools by name, all or nothing. */
  async apply(pools: PoolInputBody[]): Promise<ApplyOutcome> {
    const drafts = readApplyBody({ pools });
    return writeTransaction(this.store, this.clock, async (trx, at) => {
      const out: ApplyOutcome['pools'] = [];
      for (const [i, d] of drafts.pools.entries()) out.push(await upsertPool(trx, this.store.dialect, d, `pools[${i}]`, at));
      return { pools: out, profiles: [] };
    });
  }

  async putPool(name: string, body: PoolInputBody): Promise<{ pool: PoolView; outcome: Outcome }> {
    const dialect = this.store.dialect;
    const r = await putNamed(this.store, this.clock, 'pool', name, body, {
      read: readPool,
      upsert: (trx, draft, at) => upsertPool(trx, dialect, draft, 'body', at),
      view: (trx) => this.getPool(name, trx),
    });
    return { pool: r.view, outcome: r.outcome };
  }

  /**
   * Deletes a pool and its entries. Refused while a profile allocates from it; while machines
   * hold entries it is refused too, unless `force` (they then lose the entry and its fields).
   */
  async deletePool(name: string, opts: { force?: boolean } = {}): Promise<PoolView> {
    return writeTransaction(this.store, this.clock, async (trx, at) => {
      const view = await this.getPool(name, trx);
      if (view.profiles.length > 0) {
        throw new PlinthError('conflict', `pool ${name} is used by profile(s) ${view.profiles.join(', ')}; change them first`, { details: { pool: name, profiles: view.profiles } });
      }
      if (view.entries.held > 0 && !opts.force) {
        const one = view.entries.held === 1;
        const what = one ? `entry of pool ${name} is held by a machine` : `entries of pool ${name} are held by machines`;
        throw new PlinthError('conflict', `${view.entries.held} ${what}; delete with force to take ${one ? 'it' : 'them'} back`, {
          details: { pool: name, held: view.entries.held },
        });
      }
      await updateMachineRows(
        trx,
        (eb) => eb('pool_entry_id', 'in', eb.selectFrom('pool_entries').select('id').where('pool_id', '=', view.id)),
        { pool_entry_id: null, match_vars: sql<string | null>`match_spec_vars` },
        at,
      );
      await trx.deleteFrom('pool_entries').where('pool_id', '=', view.id).execute();
      await trx.deleteFrom('pools').where('id', '=', view.id).execute();
      return view;
    });
  }
}
