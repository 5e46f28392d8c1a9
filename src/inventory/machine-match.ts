import type { Db } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { MachinesTable } from '../store/schema.js';
import type { MachineMatch } from './machine.js';

/**
 * A machine's `match` as the API shows it, read from its row plus the names it points to
 * (profile name, pool name and entry position). Loaded per page of machines in two queries,
 * and not at all when none of the rows was matched.
 */
export interface MatchRefs {
  profiles: Map<string, string>;
  entries: Map<string, { pool: string; position: number }>;
}

export const NO_MATCH_REFS: MatchRefs = { profiles: new Map(), entries: new Map() };

type MatchColumns = Pick<MachinesTable, 'profile_id' | 'pool_entry_id' | 'match_vars' | 'match_error' | 'matched_at'>;

export async function loadMatchRefs(db: Db, rows: readonly Partial<MatchColumns>[]): Promise<MatchRefs> {
  const profileIds = [...new Set(rows.map((r) => r.profile_id).filter((x): x is string => !!x))];
  const entryIds = [...new Set(rows.map((r) => r.pool_entry_id).filter((x): x is string => !!x))];
  if (profileIds.length === 0 && entryIds.length === 0) return NO_MATCH_REFS;
  const [profiles, entries] = await Promise.all([
    profileIds.length ? db.selectFrom('profiles').select(['id', 'name']).where('id', 'in', profileIds).execute() : [],
    entryIds.length
      ? db
          .selectFrom('pool_entries')
          .innerJoin('pools', 'pools.id', 'pool_entries.pool_id')
          .select(['pool_entries.id as id', 'pools.name as pool', 'pool_entries.position as position'])
          .where('pool_entries.id', 'in', entryIds)
          .execute()
      : [],
  ]);
  return {
    profiles: new Map(profiles.map((p) => [p.id, p.name])),
    entries: new Map(entries.map((e) => [e.id, { pool: e.pool, position: Number(e.position) }])),
  };
}

export function matchOf(row: Partial<MatchColumns>, refs: MatchRefs = NO_MATCH_REFS): MachineMatch | null {
  if (!row.matched_at && !row.profile_id && !row.pool_entry_id && !row.match_error) return null;
  const entry = row.pool_entry_id ? refs.entries.get(row.pool_entry_id) : undefined;
  return {
    profile: row.profile_id ? (refs.profiles.get(row.profile_id) ?? null) : null,
    vars: fromJson<Record<string, unknown>>(row.match_vars, {}),
    poolEntry: entry && row.pool_entry_id ? { pool: entry.pool, id: row.pool_entry_id, position: entry.position } : null,
    matchedAt: row.matched_at ?? null,
    error: row.match_error ?? null,
  };
}
