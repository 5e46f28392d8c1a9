import { sql } from 'kysely';
import type { HwTuple } from '../core/facts.js';
import type { Db, Dialect } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { PoolEntriesTable, ProfilesTable } from '../store/schema.js';
import { compileSpecs, freedData, isEntryUsed, type CompiledSpec, type EngineProfile, type EntryState, type PyDict } from '../matching/index.js';
import type { DeployConfig } from './deploy-config.js';

/**
 * Reading and writing profile, pool and entry rows. Every function takes the executor, so
 * callers compose them inside one transaction. Quotas and entries change only through the
 * conditional updates here: whatever the interleaving, a quota never goes below zero and an
 * entry held by one machine is never written for another.
 */

export interface LoadedProfile extends EngineProfile {
  specs: CompiledSpec[];
  position: number;
  poolId: string | null;
  releaseReturnsEntry: boolean;
  spec: HwTuple[];
  specSource: string | null;
  deploy: DeployConfig;
  row: ProfilesTable;
}

/** Compiled specs by profile id, reused while the stored spec text is the same. */
const compiled = new Map<string, { spec: string; specs: CompiledSpec[] }>();

function compiledSpecs(row: ProfilesTable): CompiledSpec[] {
  const hit = compiled.get(row.id);
  if (hit && hit.spec === row.spec) return hit.specs;
  const specs = compileSpecs(fromJson<HwTuple[]>(row.spec, []));
  if (compiled.size > 10_000) compiled.clear();
  compiled.set(row.id, { spec: row.spec, specs });
  return specs;
}

export function toLoadedProfile(row: ProfilesTable): LoadedProfile {
  return {
    id: row.id,
    name: row.name,
    position: Number(row.position),
    quota: row.quota === null ? null : Number(row.quota),
    poolId: row.pool_id,
    releaseReturnsEntry: Boolean(row.release_returns_entry),
    // The compiled form is what matching uses; the plain lines are read back from it.
    get spec(): HwTuple[] {
      return compiledSpecs(row).map((c) => [...c.tuple] as HwTuple);
    },
    specSource: row.spec_source,
    specs: compiledSpecs(row),
    get deploy(): DeployConfig {
      return fromJson<DeployConfig>(row.deploy, {});
    },
    row,
  };
}

/** Every profile in the order they are tried: position, then name. */
export async function loadProfiles(db: Db): Promise<LoadedProfile[]> {
  const rows = await db.selectFrom('profiles').selectAll().orderBy('position').orderBy('name').execute();
  return rows.map(toLoadedProfile);
}

/**
 * An entry row as allocation sees it. JSON.parse already yields Python-shaped values (own
 * keys only, lists for sequences); `original` is parsed only if the entry is freed, which
 * most allocations never do.
 */
export function entryFromRow(row: Pick<PoolEntriesTable, 'id' | 'position' | 'data' | 'original' | 'machine_id'>): EntryState {
  let original: PyDict | undefined;
  return {
    id: row.id,
    position: Number(row.position),
    data: fromJson<PyDict>(row.data, {}),
    get original(): PyDict {
      original ??= fromJson<PyDict>(row.original, {});
      return original;
    },
    machineId: row.machine_id,
  };
}

export async function loadEntries(db: Db, poolId: string): Promise<EntryState[]> {
  const rows = await db.selectFrom('pool_entries').select(['id', 'position', 'data', 'original', 'machine_id']).where('pool_id', '=', poolId).orderBy('position').execute();
  return rows.map(entryFromRow);
}

/**
 * Serialises allocation per pool: on PostgreSQL the pool rows are locked (in id order, so
 * two transactions needing the same pools cannot deadlock); SQLite's write transaction
 * already excludes every other writer. `FOR NO KEY UPDATE` leaves foreign-key checks of
 * other transactions (a profile naming the pool) free to proceed.
 */
export async function lockPools(db: Db, dialect: Dialect, ids: readonly (string | null | undefined)[]): Promise<void> {
  const wanted = [...new Set(ids.filter((x): x is string => !!x))].sort();
  if (dialect !== 'postgres' || wanted.length === 0) return;
  await db.selectFrom('pools').select('id').where('id', 'in', wanted).orderBy('id').forNoKeyUpdate().execute();
}

/** Locks profile rows in id order (PostgreSQL), for transactions that may change several. */
export async function lockProfiles(db: Db, dialect: Dialect, ids: readonly (string | null | undefined)[]): Promise<void> {
  const wanted = [...new Set(ids.filter((x): x is string => !!x))].sort();
  if (dialect !== 'postgres' || wanted.length === 0) return;
  await db.selectFrom('profiles').select('id').where('id', 'in', wanted).orderBy('id').forNoKeyUpdate().execute();
}

/** Takes one from a limited profile's quota; false when none is left. */
export async function takeQuota(db: Db, profileId: string): Promise<boolean> {
  const r = await db
    .updateTable('profiles')
    .set({ quota: sql<number>`quota - 1` })
    .where('id', '=', profileId)
    .where('quota', '>', 0)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Gives one back to a limited profile (eDeploy's `failure=`); unlimited profiles are left alone. */
export async function giveBackQuota(db: Db, profileId: string): Promise<void> {
  await db
    .updateTable('profiles')
    .set({ quota: sql<number>`quota + 1` })
    .where('id', '=', profileId)
    .where('quota', 'is not', null)
    .execute();
}

/**
 * Gives `entryId` to `machineId` with its new content. The condition makes the write a
 * no-op when another machine holds the entry; the caller treats that as a conflict.
 */
export async function claimEntry(db: Db, entryId: string, machineId: string, data: PyDict, at: string): Promise<boolean> {
  const r = await db
    .updateTable('pool_entries')
    .set({ data: JSON.stringify(data), used: isEntryUsed(data) ? 1 : 0, machine_id: machineId, allocated_at: at })
    .where('id', '=', entryId)
    .where((eb) => eb.or([eb('machine_id', 'is', null), eb('machine_id', '=', machineId)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Frees an entry held by `machineId`: back to its original content, without a `used` mark. */
export async function freeEntry(db: Db, entry: { id: string; original: PyDict }, machineId: string, freed: PyDict): Promise<void> {
  await db
    .updateTable('pool_entries')
    .set({ data: JSON.stringify(freed), used: isEntryUsed(freed) ? 1 : 0, machine_id: null, allocated_at: null })
    .where('id', '=', entry.id)
    .where('machine_id', '=', machineId)
    .execute();
}

/** Frees an entry row held by `machineId` (its pool locked by the caller). */
export async function freeHeldEntry(db: Db, row: Pick<PoolEntriesTable, 'id' | 'position' | 'data' | 'original' | 'machine_id'>, machineId: string): Promise<void> {
  const entry = entryFromRow(row);
  await freeEntry(db, entry, machineId, freedData(entry.original));
}

/** Machines counting against each profile's quota. */
export async function heldCounts(db: Db, profileIds?: readonly string[]): Promise<Map<string, number>> {
  let q = db
    .selectFrom('machines')
    .select(['profile_id', (eb) => eb.fn.countAll().as('n')])
    .where('quota_held', '=', 1)
    .where('profile_id', 'is not', null);
  if (profileIds) {
    if (profileIds.length === 0) return new Map();
    q = q.where('profile_id', 'in', [...profileIds]);
  }
  const rows = await q.groupBy('profile_id').execute();
  return new Map(rows.map((r) => [r.profile_id!, Number(r.n)]));
}
