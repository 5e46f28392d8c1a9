import { freedData, type EngineProfile, type EntryRef, type EntryState, type SyncLedger } from './engine.js';
import type { PyDict } from './python-values.js';

/**
 * Quotas and pools held in memory: simulation works on copies of the database's, eDeploy's
 * state-file mode on what its `state` and `.cmdb` files say. Quotas start from each
 * profile's `quota` and pools from `pools(id)`, both read when first needed (eDeploy read
 * its files lazily, in state order, so a broken file of a profile never reached does not
 * get in the way). Entries are changed in place.
 */
export class MemoryLedger implements SyncLedger {
  private readonly quotas = new Map<string, number | null>();
  private readonly loaded = new Map<string, EntryState[] | null>();
  private readonly byId: Map<string, EngineProfile>;

  constructor(
    profiles: readonly EngineProfile[],
    /** A pool's entries, or null when it gives none (eDeploy: no CMDB, or an empty one). */
    private readonly pools: (poolId: string) => EntryState[] | null | undefined,
  ) {
    this.byId = new Map(profiles.map((p) => [p.id, p]));
  }

  remaining(profile: EngineProfile): number | null {
    if (!this.quotas.has(profile.id)) this.quotas.set(profile.id, profile.quota);
    return this.quotas.get(profile.id)!;
  }

  takeQuota(profile: EngineProfile): boolean {
    const left = this.remaining(profile);
    if (left === null || left <= 0) return false;
    this.quotas.set(profile.id, left - 1);
    return true;
  }

  returnQuota(profileId: string): void {
    const profile = this.byId.get(profileId);
    const left = profile ? this.remaining(profile) : null;
    if (left !== null) this.quotas.set(profileId, left + 1);
  }

  entries(poolId: string): EntryState[] | null {
    if (!this.loaded.has(poolId)) this.loaded.set(poolId, this.pools(poolId) ?? null);
    return this.loaded.get(poolId)!;
  }

  claimEntry(entry: EntryState, machineId: string | null, data: PyDict): void {
    entry.machineId = machineId;
    entry.data = data;
  }

  freeEntry(ref: EntryRef, machineId: string): void {
    const entry = this.entries(ref.poolId)?.find((e) => e.id === ref.id);
    if (!entry || entry.machineId !== machineId) return;
    entry.machineId = null;
    entry.data = freedData(entry.original);
  }
}
