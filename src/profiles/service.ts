import { sql } from 'kysely';
import type { Store, Db } from '../store/database.js';
import { fromJson, uniqueViolation } from '../store/database.js';
import type { PoolEntriesTable, PoolsTable, ProfilesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { HwTuple } from '../core/facts.js';
import { PlinthError, notFound, validation } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { requireMachine } from '../inventory/machine-rows.js';
import { describeFailure, explainMatch, formatLocation, isEdeployError, isEntryUsed, readSpecsText, type PyDict, type SpecInput } from '../matching/index.js';
import { chooseEntry, freedData, isEligible, noMatchMessage, selectProfileFor, type EntryState, type Holding } from './allocation.js';
import { readApplyBody, readPool, readProfile, specFileLabel, type PoolDraft, type ProfileDraft } from './documents.js';
import { entryFromRow, heldCounts, loadProfiles, toLoadedProfile, type LoadedProfile } from './rows.js';
import type {
  ApplyBodyType,
  ExplanationView,
  PoolEntryView,
  PoolInputBody,
  PoolView,
  ProfileInputBody,
  ProfileView,
  SimulateBodyType,
  SimulationView,
} from './schemas.js';

/**
 * Profiles and pools as the API and the CLI see them: reading, applying documents (pools
 * then profiles, one transaction: a bad document changes nothing), deleting, explaining why
 * a machine matches what it matches, and simulating matching without changing anything.
 */

type Outcome = 'created' | 'updated' | 'unchanged';
export interface ApplyOutcome {
  pools: { name: string; outcome: Outcome; entries: number }[];
  profiles: { name: string; outcome: Outcome; position: number }[];
}

/** New profiles without a position go after the last one, this far apart (room to insert between). */
const POSITION_STEP = 10;
const INSERT_CHUNK = 500;

const UNIQUE_FIELDS: Record<string, string> = {
  'profiles.name': 'profile name',
  profiles_name_key: 'profile name',
  'pools.name': 'pool name',
  pools_name_key: 'pool name',
};

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ProfileService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private lock<QB extends { forNoKeyUpdate(): QB }>(qb: QB): QB {
    return this.store.dialect === 'postgres' ? qb.forNoKeyUpdate() : qb;
  }

  // ---- reading

  private async poolNames(db: Db): Promise<Map<string, string>> {
    const rows = await db.selectFrom('pools').select(['id', 'name']).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  private profileView(row: ProfilesTable, held: number, pools: Map<string, string>): ProfileView {
    const p = toLoadedProfile(row);
    return {
      id: row.id,
      name: row.name,
      position: p.position,
      description: row.description,
      spec: p.spec,
      specText: row.spec_source,
      quota: p.quota === null ? null : p.quota + held,
      remaining: p.quota,
      held,
      pool: row.pool_id ? (pools.get(row.pool_id) ?? null) : null,
      releaseReturnsEntry: p.releaseReturnsEntry,
      deploy: p.deploy,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Every profile, in the order they are tried. */
  async listProfiles(): Promise<ProfileView[]> {
    const db = this.store.db;
    const rows = await db.selectFrom('profiles').selectAll().orderBy('position').orderBy('name').execute();
    const [held, pools] = await Promise.all([heldCounts(db), this.poolNames(db)]);
    return rows.map((r) => this.profileView(r, held.get(r.id) ?? 0, pools));
  }

  async getProfile(name: string, db: Db = this.store.db): Promise<ProfileView> {
    const row = await db.selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound('profile', name);
    const [held, pools] = await Promise.all([heldCounts(db, [row.id]), this.poolNames(db)]);
    return this.profileView(row, held.get(row.id) ?? 0, pools);
  }

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

  // ---- writing

  /** Creates or replaces pools then profiles by name, all or nothing. */
  async apply(body: ApplyBodyType): Promise<ApplyOutcome> {
    const drafts = readApplyBody(body);
    return this.write(async (trx, at) => {
      const pools: ApplyOutcome['pools'] = [];
      for (const [i, d] of drafts.pools.entries()) pools.push(await this.upsertPool(trx, d, `pools[${i}]`, at));
      const profiles: ApplyOutcome['profiles'] = [];
      for (const [i, d] of drafts.profiles.entries()) profiles.push(await this.upsertProfile(trx, d, `profiles[${i}]`, at));
      return { pools, profiles };
    });
  }

  async putProfile(name: string, body: ProfileInputBody): Promise<{ profile: ProfileView; outcome: Outcome }> {
    if (body.name !== name) throw validation('name', `'${body.name}' differs from the profile named in the path ('${name}')`);
    const draft = readProfile(body, 'body');
    return this.write(async (trx, at) => {
      const r = await this.upsertProfile(trx, draft, 'body', at);
      return { profile: await this.getProfile(name, trx), outcome: r.outcome };
    });
  }

  async putPool(name: string, body: PoolInputBody): Promise<{ pool: PoolView; outcome: Outcome }> {
    if (body.name !== name) throw validation('name', `'${body.name}' differs from the pool named in the path ('${name}')`);
    const draft = readPool(body, 'body');
    return this.write(async (trx, at) => {
      const r = await this.upsertPool(trx, draft, 'body', at);
      return { pool: await this.getPool(name, trx), outcome: r.outcome };
    });
  }

  private async write<T>(fn: (trx: Db, at: string) => Promise<T>): Promise<T> {
    const at = iso(this.clock.now());
    try {
      return await this.store.transaction((trx) => fn(trx, at));
    } catch (e) {
      const which = uniqueViolation(e);
      // Two writers creating the same name at once: the database lets one win.
      if (which !== null && !(e instanceof PlinthError)) {
        throw new PlinthError('duplicate', `${UNIQUE_FIELDS[which] ?? which} was created by another request at the same time; apply again`, { details: { field: which }, cause: e });
      }
      throw e;
    }
  }

  private async upsertPool(trx: Db, d: PoolDraft, field: string, at: string): Promise<ApplyOutcome['pools'][number]> {
    const existing = await this.lock(trx.selectFrom('pools').selectAll().where('name', '=', d.name)).executeTakeFirst();
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

  private async upsertProfile(trx: Db, d: ProfileDraft, field: string, at: string): Promise<ApplyOutcome['profiles'][number]> {
    // Locked first: an inspection taking this profile's quota waits, then sees the new count.
    const existing = await this.lock(trx.selectFrom('profiles').selectAll().where('name', '=', d.name)).executeTakeFirst();
    let poolId: string | null = null;
    if (d.pool !== null) {
      const pool = await trx.selectFrom('pools').select('id').where('name', '=', d.pool).executeTakeFirst();
      if (!pool) throw validation(`${field}.pool`, `no pool named '${d.pool}' (apply the pool first, or in the same document)`);
      poolId = pool.id;
    }
    const held = existing ? ((await heldCounts(trx, [existing.id])).get(existing.id) ?? 0) : 0;
    // The document says how many machines may hold the profile; what is left to take is that
    // minus the machines that hold it now.
    const remaining = d.quota === null ? null : Math.max(0, d.quota - held);
    let position = d.position ?? (existing ? Number(existing.position) : undefined);
    if (position === undefined) {
      const last = await trx.selectFrom('profiles').select((eb) => eb.fn.max('position').as('max')).executeTakeFirst();
      position = last?.max === null || last?.max === undefined ? POSITION_STEP : Number(last.max) + POSITION_STEP;
    }
    const values = {
      position,
      spec: JSON.stringify(d.spec),
      spec_source: d.specSource,
      quota: remaining,
      pool_id: poolId,
      release_returns_entry: d.releaseReturnsEntry ? 1 : 0,
      deploy: JSON.stringify(d.deploy),
      description: d.description,
    };
    if (!existing) {
      await trx.insertInto('profiles').values({ id: newId(), name: d.name, ...values, created_at: at, updated_at: at }).execute();
      return { name: d.name, outcome: 'created', position };
    }
    const same = (Object.keys(values) as (keyof typeof values)[]).every((k) => {
      const before = existing[k];
      return (typeof before === 'number' || typeof before === 'bigint' ? Number(before) : before) === values[k];
    });
    if (same) return { name: d.name, outcome: 'unchanged', position };
    await trx.updateTable('profiles').set({ ...values, updated_at: at }).where('id', '=', existing.id).execute();
    return { name: d.name, outcome: 'updated', position };
  }

  /**
   * Deletes a profile. Machines that matched it keep their variables and pool entries; with
   * `force` they are detached (no profile, no quota held), without it the delete is refused.
   */
  async deleteProfile(name: string, opts: { force?: boolean } = {}): Promise<ProfileView> {
    return this.write(async (trx, at) => {
      const view = await this.getProfile(name, trx);
      const users = await trx.selectFrom('machines').select('name').where('profile_id', '=', view.id).orderBy('name').limit(6).execute();
      if (users.length > 0 && !opts.force) {
        const names = users.slice(0, 5).map((u) => u.name).join(', ');
        throw new PlinthError('conflict', `profile ${name} is the profile of machine(s) ${names}${users.length > 5 ? ', …' : ''}; delete with force to detach them`, {
          details: { profile: name, machines: users.map((u) => u.name) },
        });
      }
      await trx
        .updateTable('machines')
        .set({ profile_id: null, quota_held: 0, updated_at: at, version: sql<number>`version + 1` })
        .where('profile_id', '=', view.id)
        .execute();
      await trx.deleteFrom('profiles').where('id', '=', view.id).execute();
      return view;
    });
  }

  /**
   * Deletes a pool and its entries. Refused while a profile allocates from it; while machines
   * hold entries it is refused too, unless `force` (they then lose the entry and its fields).
   */
  async deletePool(name: string, opts: { force?: boolean } = {}): Promise<PoolView> {
    return this.write(async (trx, at) => {
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
      await trx
        .updateTable('machines')
        .set({ pool_entry_id: null, match_vars: sql<string>`match_spec_vars`, updated_at: at, version: sql<number>`version + 1` })
        .where('pool_entry_id', 'in', (eb) => eb.selectFrom('pool_entries').select('id').where('pool_id', '=', view.id))
        .execute();
      await trx.deleteFrom('pool_entries').where('pool_id', '=', view.id).execute();
      await trx.deleteFrom('pools').where('id', '=', view.id).execute();
      return view;
    });
  }

  // ---- explaining and simulating

  /** For each profile in order: does the machine match it, and if not, the first rule that failed and why. */
  async explain(machineKey: string): Promise<ExplanationView> {
    const db = this.store.db;
    const m = await requireMachine(db, this.store.dialect, machineKey);
    const hw = m.facts?.hw;
    if (!hw || hw.length === 0) {
      throw new PlinthError('conflict', `machine ${m.name} has no hardware facts yet; inspect it first`, { details: { machine: m.name, state: m.state } });
    }
    const row = await db.selectFrom('machines').select(['profile_id', 'quota_held']).where('id', '=', m.id).executeTakeFirstOrThrow();
    const holding: Holding = { profileId: row.profile_id, quotaHeld: Boolean(row.quota_held) && row.profile_id !== null };
    const profiles = await loadProfiles(db);
    let selected: string | null = null;
    const items = profiles.map((p) => {
      const rules: SpecInput = p.specSource ? readSpecsText(p.specSource, { file: specFileLabel(p.name), format: 'python' }) : p.spec;
      const ex = explainMatch(rules, hw);
      const quotaExhausted = !isEligible(p, holding);
      if (selected === null && ex.matched && !quotaExhausted) selected = p.name;
      const f = ex.failure;
      return {
        name: p.name,
        position: p.position,
        remaining: p.quota,
        quotaExhausted,
        matched: ex.matched,
        vars: ex.vars,
        failure: f
          ? {
              kind: f.kind,
              rule: f.specIndex + 1,
              spec: [...f.spec],
              at: f.at ? formatLocation(f.at) : null,
              bound: f.bound,
              message: f.message,
              nearMisses: f.nearMisses.map((n) => ({
                line: [...n.line],
                position: n.position === null ? null : n.position + 1,
                reason: n.failure ? describeFailure(n.failure) : null,
                takenByRule: n.takenBy === null ? null : n.takenBy + 1,
              })),
            }
          : null,
        text: quotaExhausted ? `${ex.text}\n(not tried: no quota left)` : ex.text,
      };
    });
    return { machine: { id: m.id, name: m.name }, current: m.match, selected, profiles: items };
  }

  /**
   * Which machine would get which profile and pool entry if each were matched now, one after
   * the other in name order, against copies of the quotas and pools: nothing is written.
   * Without `machines`, the inventory's machines with facts are used (each keeping what it
   * holds, as on re-inspection); with them, those hardware lists as new machines.
   */
  async simulate(body: SimulateBodyType): Promise<SimulationView> {
    const db = this.store.db;
    const profiles = await loadProfiles(db);
    const poolNames = await this.poolNames(db);
    const pools = new Map<string, EntryState[]>();
    for (const id of new Set(profiles.map((p) => p.poolId).filter((x): x is string => !!x))) {
      const rows = await db.selectFrom('pool_entries').selectAll().where('pool_id', '=', id).orderBy('position').execute();
      pools.set(id, rows.map(entryFromRow));
    }
    const entryPool = new Map<string, string>();
    for (const [poolId, entries] of pools) for (const e of entries) entryPool.set(e.id, poolId);
    const free = (poolId: string) => pools.get(poolId)!.filter((e) => e.machineId === null && !isEntryUsed(e.data)).length;
    const before = {
      profiles: profiles.map((p) => p.quota),
      pools: [...pools.keys()].map((id) => free(id)),
    };

    const items: SimulationView['items'] = [];
    const simulateOne = async (machine: { id: string; name: string; hw: readonly HwTuple[]; holding: Holding; entryId: string | null }) => {
      const giveBack = (id: string | null) => {
        const p = profiles.find((x) => x.id === id);
        if (p && p.quota !== null) p.quota++;
      };
      const freeOld = (keep: string | null) => {
        if (!machine.entryId || machine.entryId === keep) return;
        const e = pools.get(entryPool.get(machine.entryId) ?? '')?.find((x) => x.id === machine.entryId);
        if (e && e.machineId === machine.id) {
          e.machineId = null;
          e.data = freedData(e.original);
        }
      };
      const sel = await selectProfileFor(profiles, machine.hw, machine.holding, (p: LoadedProfile) => {
        if (p.quota === null || p.quota <= 0) return false;
        p.quota--;
        return true;
      });
      if (!sel.profile) {
        if (machine.holding.quotaHeld) giveBack(machine.holding.profileId);
        freeOld(null);
        items.push({ machine: machine.name, profile: null, poolEntry: null, vars: {}, error: noMatchMessage(sel.tried, profiles.length) });
        return;
      }
      const p = sel.profile;
      if (machine.holding.quotaHeld && machine.holding.profileId !== p.id) giveBack(machine.holding.profileId);
      if (!p.poolId) {
        freeOld(null);
        items.push({ machine: machine.name, profile: p.name, poolEntry: null, vars: sel.vars, error: null });
        return;
      }
      try {
        const choice = chooseEntry(pools.get(p.poolId)!, machine.id, sel.vars, sel.cmdbVars);
        freeOld(choice.entry.id);
        choice.entry.machineId = machine.id;
        choice.entry.data = choice.data;
        items.push({ machine: machine.name, profile: p.name, poolEntry: { pool: poolNames.get(p.poolId) ?? p.poolId, position: choice.entry.position, reused: choice.reused }, vars: JSON.parse(JSON.stringify(choice.data)), error: null });
      } catch (e) {
        if (!isEdeployError(e)) throw e;
        if (sel.quota !== 'unlimited') giveBack(p.id);
        freeOld(null);
        items.push({ machine: machine.name, profile: null, poolEntry: null, vars: {}, error: e.message });
      }
    };

    if (body.machines) {
      const lists = body.machines.map((m, i) => ({ name: m.name, hw: readHw(m.hw, `machines[${i}].hw`) }));
      for (const [i, m] of lists.entries()) {
        await simulateOne({ id: `simulated:${i}`, name: m.name, hw: m.hw, holding: { profileId: null, quotaHeld: false }, entryId: null });
      }
    } else {
      let after: string | undefined;
      for (;;) {
        let q = db
          .selectFrom('machines')
          .select(['id', 'name', 'facts', 'profile_id', 'quota_held', 'pool_entry_id'])
          .where('facts', 'is not', null)
          .where('state', '!=', 'retired');
        if (after !== undefined) q = q.where('name', '>', after);
        const page = await q.orderBy('name').limit(200).execute();
        if (page.length === 0) break;
        for (const r of page) {
          const hw = fromJson<{ hw?: HwTuple[] } | null>(r.facts, null)?.hw ?? [];
          await simulateOne({ id: r.id, name: r.name, hw, holding: { profileId: r.profile_id, quotaHeld: Boolean(r.quota_held) && r.profile_id !== null }, entryId: r.pool_entry_id });
        }
        after = page[page.length - 1]!.name;
      }
    }
    return {
      source: body.machines ? 'hardware-lists' : 'inventory',
      items,
      profiles: profiles.map((p, i) => ({ name: p.name, remainingBefore: before.profiles[i]!, remainingAfter: p.quota })),
      pools: [...pools.keys()].map((id, i) => ({ name: poolNames.get(id) ?? id, freeBefore: before.pools[i]!, freeAfter: free(id) })),
    };
  }
}

/** A hardware list from a request: 4 values per line, numbers as their string form. */
function readHw(lines: readonly unknown[][], field: string): HwTuple[] {
  return lines.map((line, i) => {
    if (line.length !== 4) throw validation(`${field}[${i}]`, `has ${line.length} values; a hardware line has 4`);
    return line.map((v, j) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      throw validation(`${field}[${i}][${j}]`, 'must be a string or a number');
    }) as HwTuple;
  });
}

