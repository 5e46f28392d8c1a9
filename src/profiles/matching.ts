import type { Store, Db, Dialect } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import type { MachinesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError } from '../core/errors.js';
import type { Machine } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import type { Facts, HwTuple } from '../core/facts.js';
import { requireMachine, updateMachineRow } from '../inventory/machine-rows.js';
import type { LifecycleEngine, TransitionResult } from '../lifecycle/engine.js';
import { recordEvent } from '../inventory/events.js';
import { allocate, noMatchMessage } from '../matching/index.js';
import { freeHeldEntry, giveBackQuota, lockPools, takeQuota } from './rows.js';
import { ProfileCache } from './profile-cache.js';
import { SqlLedger } from './sql-ledger.js';

/**
 * Matching against the database, at the end of every inspection, inside the inspection's
 * transaction with the machine row locked: the matching engine (matching/engine.ts) over the
 * SQL ledger (sql-ledger.ts), whose outcome becomes the machine's columns and an event:
 * 1. profiles in order; the first whose spec matches and whose quota can be taken wins
 *    (the quota is taken by a conditional update, so it is never overdrawn);
 * 2. its pool gives the machine an entry (reused when it carries the machine's lookup
 *    variables and no other machine holds it, else the first free one), written with a
 *    conditional update so an entry held by another machine is never taken;
 * 3. an exhausted pool gives the quota back and leaves the machine without a profile, with
 *    eDeploy's message in `match_error` and an event.
 * And around the lifecycle: a failed deploy gives the quota back (eDeploy's `failure=`),
 * release gives the pool entry back when the profile says so, deleting a machine frees both.
 *
 * Lock order on PostgreSQL, so that concurrent inspections never deadlock: the machine row
 * (the lifecycle engine), then profile rows, then pool rows in id order. A first match holds
 * at most one profile lock (the quota it took); a re-inspection that holds a quota locks
 * every profile it may touch up front, in id order.
 */

const ACTOR = 'system:matching';

type MatchColumns = Pick<MachinesTable, 'profile_id' | 'match_vars' | 'match_spec_vars' | 'pool_entry_id' | 'match_error' | 'matched_at' | 'quota_held'>;

function unmatched(at: string, error: string | null): MatchColumns {
  return { profile_id: null, match_vars: null, match_spec_vars: null, pool_entry_id: null, match_error: error, matched_at: at, quota_held: 0 };
}

/** The inspection service as matching sees it: work to run in the inspection's transaction. */
export interface InspectionHooks {
  onInspected(hook: (trx: Db, machine: Machine, facts: Facts) => Promise<Partial<MachinesTable>>): void;
}

export class MatchingService {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly profiles = new ProfileCache();

  constructor(deps: { store: Store; clock: Clock }) {
    this.store = deps.store;
    this.clock = deps.clock;
  }

  /**
   * Matches machines at the end of inspection and follows their deploys, releases, failures
   * and deletes. Inspection sits above profiles, so it is taken by the one hook matching uses.
   */
  attach(engine: LifecycleEngine, inspection: InspectionHooks, inventory: Pick<InventoryService, 'onDeleting'>): void {
    inspection.onInspected((trx, machine, facts) => this.matchInTransaction(trx, machine, facts.hw));
    engine.onTransitionInTransaction((trx, result) => this.afterTransition(trx, result));
    inventory.onDeleting((trx, machine) => releaseMatchOfDeletedMachine(trx, this.store.dialect, machine.id));
  }

  /** Matches `machine` (whose row the caller has locked); returns the machine columns to write. */
  async matchInTransaction(trx: Db, machine: Pick<Machine, 'id' | 'name' | 'state'>, hw: readonly HwTuple[]): Promise<MatchColumns> {
    const at = iso(this.clock.now());
    const row = await trx.selectFrom('machines').select(['profile_id', 'quota_held', 'pool_entry_id']).where('id', '=', machine.id).executeTakeFirstOrThrow();
    const oldEntry = row.pool_entry_id ? await trx.selectFrom('pool_entries').select(['id', 'pool_id']).where('id', '=', row.pool_entry_id).executeTakeFirst() : undefined;
    const { profiles, quotas, poolNames } = await this.profiles.read(trx);
    const event = (action: string, reason: string | null, details: Record<string, unknown>) =>
      recordEvent(trx, { machineId: machine.id, at, actor: ACTOR, action, fromState: machine.state, toState: machine.state, reason, details });

    const a = await allocate(
      {
        id: machine.id,
        hw,
        holding: { profileId: row.profile_id, quotaHeld: Boolean(row.quota_held) && row.profile_id !== null },
        entry: oldEntry ? { id: oldEntry.id, poolId: oldEntry.pool_id } : null,
      },
      profiles,
      new SqlLedger(trx, this.store.dialect, at, machine.name, quotas),
    );
    if (!a.profile) {
      const error = noMatchMessage(a.tried, profiles.length);
      if (error) await event('match-failed', error, { tried: a.tried });
      return unmatched(at, error);
    }

    const profile = a.profile;
    const specVars = a.vars;
    const poolName = profile.poolId ? (poolNames.get(profile.poolId) ?? profile.poolId) : null;
    if (a.failure) {
      await event('match-failed', a.failure.message, { profile: profile.name, pool: poolName, lookup: Object.keys(a.cmdbVars).length ? a.cmdbVars : null });
      return unmatched(at, a.failure.message);
    }
    const matched = { profile_id: profile.id, match_spec_vars: toJson(specVars) ?? '{}', match_error: null, matched_at: at, quota_held: a.quota !== 'unlimited' ? 1 : 0 };
    if (!a.entry) {
      await event('match', `matched profile ${profile.name}`, { profile: profile.name, quota: a.quota });
      return { ...matched, match_vars: toJson(specVars) ?? '{}', pool_entry_id: null };
    }
    const { entry, data, reused } = a.entry;
    await event('match', `matched profile ${profile.name}, entry ${entry.position} of pool ${poolName}`, {
      profile: profile.name,
      quota: a.quota,
      pool: poolName,
      position: entry.position,
      reused,
    });
    return { ...matched, match_vars: JSON.stringify(data), pool_entry_id: entry.id };
  }

  private async afterTransition(trx: Db, result: TransitionResult): Promise<void> {
    if (result.transition.action === 'release') await this.returnEntryOnRelease(trx, result);
    if (result.transition.to === 'deploy-failed') await this.returnQuotaOnFailure(trx, result);
  }

  /** Release keeps the entry reserved for the machine (eDeploy), unless its profile says to give it back. */
  private async returnEntryOnRelease(trx: Db, result: TransitionResult): Promise<void> {
    const id = result.machine.id;
    const row = await trx.selectFrom('machines').select(['profile_id', 'pool_entry_id', 'match_spec_vars']).where('id', '=', id).executeTakeFirstOrThrow();
    if (!row.pool_entry_id || !row.profile_id) return;
    const profile = await trx.selectFrom('profiles').select(['name', 'release_returns_entry']).where('id', '=', row.profile_id).executeTakeFirst();
    if (!profile || !profile.release_returns_entry) return;
    const entry = await trx.selectFrom('pool_entries').selectAll().where('id', '=', row.pool_entry_id).executeTakeFirst();
    const at = iso(this.clock.now());
    if (entry) {
      await lockPools(trx, this.store.dialect, [entry.pool_id]);
      await freeHeldEntry(trx, entry, id);
    }
    // The entry's fields (hostname, addresses) now belong to whoever takes it next.
    await updateMachineRow(trx, id, { pool_entry_id: null, match_vars: row.match_spec_vars ?? '{}' }, at);
    await recordEvent(trx, {
      machineId: id,
      at,
      actor: ACTOR,
      action: 'pool-entry-returned',
      fromState: result.machine.state,
      toState: result.machine.state,
      reason: `released; profile ${profile.name} gives its pool entry back on release`,
      details: entry ? { position: Number(entry.position), entry: fromJson(entry.data, null) } : null,
    });
    result.machine = await requireMachine(trx, this.store.dialect, id);
  }

  /** eDeploy's `failure=<profile>`: a machine that failed to deploy no longer counts against its profile. */
  private async returnQuotaOnFailure(trx: Db, result: TransitionResult): Promise<void> {
    const id = result.machine.id;
    const row = await trx.selectFrom('machines').select(['profile_id', 'quota_held']).where('id', '=', id).executeTakeFirstOrThrow();
    if (!row.profile_id || !row.quota_held) return;
    const at = iso(this.clock.now());
    await giveBackQuota(trx, row.profile_id);
    await updateMachineRow(trx, id, { quota_held: 0 }, at);
    const profile = await trx.selectFrom('profiles').select('name').where('id', '=', row.profile_id).executeTakeFirst();
    await recordEvent(trx, {
      machineId: id,
      at,
      actor: ACTOR,
      action: 'quota-returned',
      fromState: result.machine.state,
      toState: result.machine.state,
      reason: `deploy failed: one of profile ${profile?.name ?? row.profile_id}'s quota is given back`,
      details: { profile: profile?.name ?? null },
    });
    result.machine = await requireMachine(trx, this.store.dialect, id);
  }
}

export interface DeployQuota {
  /** The machine's profile, or null when it has none. */
  profile: string | null;
  /** True when a quota was taken now; false when the machine already held one or the profile is unlimited. */
  taken: boolean;
}

/**
 * For the deploy of a machine whose quota was given back by an earlier failed deploy: takes
 * one again, or refuses (409) when the profile has none left. A machine that holds its quota,
 * has no profile, or whose profile is unlimited needs nothing. Call it inside the deploy's
 * transaction (the machine row locked).
 */
export async function takeQuotaForDeploy(trx: Db, machine: { id: string }, at: string = new Date().toISOString()): Promise<DeployQuota> {
  const row = await trx.selectFrom('machines').select(['name', 'state', 'profile_id', 'quota_held']).where('id', '=', machine.id).executeTakeFirstOrThrow();
  if (!row.profile_id) return { profile: null, taken: false };
  const profile = await trx.selectFrom('profiles').select(['id', 'name', 'quota']).where('id', '=', row.profile_id).executeTakeFirstOrThrow();
  if (row.quota_held || profile.quota === null) return { profile: profile.name, taken: false };
  if (!(await takeQuota(trx, profile.id))) {
    throw new PlinthError(
      'conflict',
      `machine ${row.name} cannot be deployed as profile ${profile.name}: the profile has no quota left (this machine gave its share back when a deploy failed); raise the quota or inspect the machine again`,
      { details: { machine: row.name, profile: profile.name, remaining: 0 } },
    );
  }
  await updateMachineRow(trx, machine.id, { quota_held: 1 }, at);
  await recordEvent(trx, { machineId: machine.id, at, actor: ACTOR, action: 'quota-taken', fromState: row.state, toState: row.state, reason: `deploy: one of profile ${profile.name}'s quota taken again`, details: { profile: profile.name } });
  return { profile: profile.name, taken: true };
}

/**
 * What a deleted machine held goes back: its quota to the profile and its pool entries to
 * their pools. Call it in the delete's transaction, before the row goes.
 */
export async function releaseMatchOfDeletedMachine(trx: Db, dialect: Dialect, machineId: string): Promise<void> {
  const row = await trx.selectFrom('machines').select(['profile_id', 'quota_held']).where('id', '=', machineId).executeTakeFirst();
  if (!row) return;
  if (row.profile_id && row.quota_held) await giveBackQuota(trx, row.profile_id);
  const held = await trx.selectFrom('pool_entries').selectAll().where('machine_id', '=', machineId).execute();
  if (held.length === 0) return;
  await lockPools(trx, dialect, held.map((e) => e.pool_id));
  for (const e of held) await freeHeldEntry(trx, e, machineId);
}
