import type { Db, Dialect } from '../store/database.js';
import { PlinthError } from '../core/errors.js';
import type { EngineProfile, EntryRef, EntryState, Ledger, PyDict } from '../matching/index.js';
import { claimEntry, freeHeldEntry, giveBackQuota, loadEntries, lockPools, lockProfiles, takeQuota } from './rows.js';

/**
 * The matching engine's ledger over the database, inside one transaction (the machine row
 * already locked by the caller). Quotas are taken and entries claimed with conditional
 * updates, so whatever the interleaving a quota never goes below zero and an entry held by
 * one machine is never written for another.
 *
 * Lock order on PostgreSQL, so that concurrent matches never deadlock: the machine row, then
 * profile rows (the engine asks for all it may change up front when it may give one back),
 * then pool rows in id order (the pool allocated from and the pool of the entry the machine
 * holds, together). SQLite's write transaction already excludes every other writer.
 */
export class SqlLedger implements Ledger {
  /** Pools this transaction has locked: asked again, they are not locked twice. */
  private readonly lockedPools = new Set<string>();
  readonly lockProfiles?: (ids: readonly string[]) => Promise<void>;

  constructor(
    private readonly trx: Db,
    private readonly dialect: Dialect,
    private readonly at: string,
    /** Named in the conflict a broken lock would show as. */
    private readonly machineName: string,
    /** The quotas left as read in this transaction (ProfileCache); a profile not in it has its own. */
    private readonly quotas: ReadonlyMap<string, number | null> = new Map(),
  ) {
    // Only PostgreSQL locks rows; elsewhere the engine need not work out what to lock.
    if (dialect === 'postgres') this.lockProfiles = (ids) => lockProfiles(this.trx, this.dialect, ids);
  }

  /** What was left when the profiles were read; taking one is what checks it again. */
  remaining(profile: EngineProfile): number | null {
    const left = this.quotas.get(profile.id);
    return left === undefined ? profile.quota : left;
  }

  takeQuota(profile: EngineProfile): Promise<boolean> {
    return takeQuota(this.trx, profile.id);
  }

  returnQuota(profileId: string): Promise<void> {
    return giveBackQuota(this.trx, profileId);
  }

  private async lockPools(ids: readonly string[]): Promise<void> {
    const wanted = ids.filter((id) => !this.lockedPools.has(id));
    await lockPools(this.trx, this.dialect, wanted);
    for (const id of wanted) this.lockedPools.add(id);
  }

  async entries(poolId: string, alsoLock: readonly string[]): Promise<EntryState[]> {
    await this.lockPools([poolId, ...alsoLock]);
    return loadEntries(this.trx, poolId);
  }

  async claimEntry(entry: EntryState, machineId: string | null, data: PyDict): Promise<void> {
    if (machineId !== null && (await claimEntry(this.trx, entry.id, machineId, data, this.at))) return;
    // Unreachable while the pool lock is held; kept so a broken lock shows as an error, not a double allocation.
    const pool = await this.trx.selectFrom('pools').innerJoin('pool_entries', 'pool_entries.pool_id', 'pools.id').select('pools.name').where('pool_entries.id', '=', entry.id).executeTakeFirst();
    throw new PlinthError('conflict', `entry ${entry.position} of pool ${pool?.name ?? '?'} is held by another machine; inspect ${this.machineName} again`);
  }

  async freeEntry(ref: EntryRef, machineId: string): Promise<void> {
    await this.lockPools([ref.poolId]);
    const row = await this.trx.selectFrom('pool_entries').select(['id', 'position', 'data', 'original', 'machine_id']).where('id', '=', ref.id).executeTakeFirst();
    if (row) await freeHeldEntry(this.trx, row, machineId);
  }
}
