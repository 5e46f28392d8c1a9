import type { Store, Db, Dialect } from '../store/database.js';
import type { ProfilesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { PlinthError, notFound, validation } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { updateMachineRows } from '../inventory/machine-rows.js';
import { readApplyBody, readProfile, type ProfileDraft } from './documents.js';
import { upsertPool } from './pool-service.js';
import { heldCounts, toLoadedProfile } from './rows.js';
import type { ApplyBodyType, ProfileInputBody, ProfileView } from './schemas.js';
import { lockForUpdate, poolNames, putNamed, writeTransaction, type ApplyOutcome, type Outcome } from './writes.js';

/**
 * Profiles as the API and the CLI see them: reading, applying documents (pools then
 * profiles, one transaction: a bad document changes nothing) and deleting.
 */

/** New profiles without a position go after the last one, this far apart (room to insert between). */
const POSITION_STEP = 10;

/** Creates or replaces one profile by name, inside the caller's transaction. */
export async function upsertProfile(trx: Db, dialect: Dialect, d: ProfileDraft, field: string, at: string): Promise<ApplyOutcome['profiles'][number]> {
  // Locked first: an inspection taking this profile's quota waits, then sees the new count.
  const existing = await lockForUpdate(dialect, trx.selectFrom('profiles').selectAll().where('name', '=', d.name)).executeTakeFirst();
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


export class ProfileService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

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
    const [held, pools] = await Promise.all([heldCounts(db), poolNames(db)]);
    return rows.map((r) => this.profileView(r, held.get(r.id) ?? 0, pools));
  }

  async getProfile(name: string, db: Db = this.store.db): Promise<ProfileView> {
    const row = await db.selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound('profile', name);
    const [held, pools] = await Promise.all([heldCounts(db, [row.id]), poolNames(db)]);
    return this.profileView(row, held.get(row.id) ?? 0, pools);
  }

  /** Creates or replaces pools then profiles by name, all or nothing. */
  async apply(body: ApplyBodyType): Promise<ApplyOutcome> {
    const drafts = readApplyBody(body);
    return writeTransaction(this.store, this.clock, async (trx, at) => {
      const pools: ApplyOutcome['pools'] = [];
      for (const [i, d] of drafts.pools.entries()) pools.push(await upsertPool(trx, this.store.dialect, d, `pools[${i}]`, at));
      const profiles: ApplyOutcome['profiles'] = [];
      for (const [i, d] of drafts.profiles.entries()) profiles.push(await upsertProfile(trx, this.store.dialect, d, `profiles[${i}]`, at));
      return { pools, profiles };
    });
  }

  async putProfile(name: string, body: ProfileInputBody): Promise<{ profile: ProfileView; outcome: Outcome }> {
    const dialect = this.store.dialect;
    const r = await putNamed(this.store, this.clock, 'profile', name, body, {
      read: readProfile,
      upsert: (trx, draft, at) => upsertProfile(trx, dialect, draft, 'body', at),
      view: (trx) => this.getProfile(name, trx),
    });
    return { profile: r.view, outcome: r.outcome };
  }

  /**
   * Deletes a profile. Machines that matched it keep their variables and pool entries; with
   * `force` they are detached (no profile, no quota held), without it the delete is refused.
   */
  async deleteProfile(name: string, opts: { force?: boolean } = {}): Promise<ProfileView> {
    return writeTransaction(this.store, this.clock, async (trx, at) => {
      const view = await this.getProfile(name, trx);
      const users = await trx.selectFrom('machines').select('name').where('profile_id', '=', view.id).orderBy('name').limit(6).execute();
      if (users.length > 0 && !opts.force) {
        const names = users.slice(0, 5).map((u) => u.name).join(', ');
        throw new PlinthError('conflict', `profile ${name} is the profile of machine(s) ${names}${users.length > 5 ? ', …' : ''}; delete with force to detach them`, {
          details: { profile: name, machines: users.map((u) => u.name) },
        });
      }
      await updateMachineRows(trx, (eb) => eb('profile_id', '=', view.id), { profile_id: null, quota_held: 0 }, at);
      await trx.deleteFrom('profiles').where('id', '=', view.id).execute();
      return view;
    });
  }
}
