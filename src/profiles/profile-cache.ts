import type { Db } from '../store/database.js';
import { loadProfiles, type LoadedProfile } from './rows.js';
import { poolNames } from './writes.js';

/** What a match reads: the definitions (possibly cached) and the quotas left now (never cached). */
export interface ProfilesForMatch {
  profiles: LoadedProfile[];
  /** What is left of each profile's quota, as read in the caller's transaction (null: unlimited). */
  quotas: Map<string, number | null>;
  poolNames: Map<string, string>;
}

/**
 * The profiles matching tries, compiled, and the pool names, kept between inspections (every
 * facts report read all of them again: a tenth of the database time in a profile of 64
 * inspections at once). The key is the definitions' version, which triggers bump on every
 * change of a profile or pool (migration 0023), read in the caller's transaction in the same
 * statement as the quotas: a change committed through any controller sharing the database is
 * seen at the next match. The quotas are allocation counters, changed by every match, so they
 * are read each time and never kept.
 *
 * The version is read before the definitions: a change committed between the two reads makes
 * the cache hold newer definitions under an older version, which the next read replaces —
 * never older definitions under a newer one.
 */
export class ProfileCache {
  private cached: { version: number; profiles: LoadedProfile[]; poolNames: Map<string, string> } | null = null;

  async read(trx: Db): Promise<ProfilesForMatch> {
    const rows = await trx.selectFrom(['profiles', 'profiles_version']).select(['profiles.id', 'profiles.quota', 'profiles_version.version']).execute();
    const quotas = new Map(rows.map((r) => [r.id, r.quota === null ? null : Number(r.quota)]));
    if (rows.length === 0) return { profiles: [], quotas, poolNames: new Map() };
    const version = Number(rows[0]!.version);
    let c = this.cached;
    if (!c || c.version !== version || c.profiles.length !== rows.length) {
      c = this.cached = { version, profiles: await loadProfiles(trx), poolNames: await poolNames(trx) };
    }
    return { profiles: c.profiles, quotas, poolNames: c.poolNames };
  }
}
