import type { HwTuple } from '../core/facts.js';
import { validation } from '../core/errors.js';
import type { CmdbEntry } from './cmdb.js';
import { allocateSync, noMatchError, type EngineProfile } from './engine.js';
import type { MatchOptions } from './matcher.js';
import { MemoryLedger } from './memory-ledger.js';
import { parsePyInt } from './python-numbers.js';
import { cloneValue, type PyDict } from './python-values.js';
import type { SpecInput } from './spec-rules.js';

/**
 * Profile selection over eDeploy's `state` (an ordered list of `(profile, count)`), as
 * `State.find_match` and `State.failed_profile` did, over plain data (the matching engine,
 * engine.ts, over an in-memory ledger):
 * - profiles are tried in order; a count of `'*'` is unlimited, an int or numeric string is
 *   a quota, and a profile whose quota is 0 (or less) is not tried;
 * - the first profile whose specs match wins, and its quota is decremented at once, when
 *   the match is made (the count becomes an int, as eDeploy wrote it);
 * - a reported failure gives one back to the first entry of that name.
 */

/** An int, a numeric string such as `'4'`, or `'*'`. */
export type StateCount = number | string;

export interface StateEntry {
  profile: string;
  count: StateCount;
}

export type Quota = { unlimited: true } | { unlimited: false; remaining: number };

/** Python's `int(times)` on a count, or `'*'`. */
export function quotaOf(count: StateCount, profile = '?'): Quota {
  if (count === '*') return { unlimited: true };
  if (typeof count === 'number') {
    if (!Number.isFinite(count)) throw validation('state', `profile '${profile}' has an invalid count ${count}`);
    return { unlimited: false, remaining: Math.trunc(count) };
  }
  const n = parsePyInt(count);
  if (n === null) throw validation('state', `profile '${profile}' has an invalid count '${count}' (an integer or '*' is expected)`);
  return { unlimited: false, remaining: Number(n) };
}

export interface ProfileMatch {
  /** Position of the profile in `state`. */
  index: number;
  profile: string;
  /** Every variable, by bare name. */
  vars: Record<string, string>;
  /** The `$$` variables alone. */
  cmdbVars: Record<string, string>;
  /** True when `$$` variables exist: the CMDB lookup must then find an entry. */
  forced: boolean;
  /** The state with this profile's quota decremented. */
  state: StateEntry[];
}

export interface SelectOptions extends MatchOptions {
  /** Named in "No more role available in ..." (eDeploy named the state file). */
  stateFile?: string;
  /** Named in "Unable to match requirements ... in ..." (eDeploy named the config directory). */
  configDir?: string;
}

type Specs = (profile: string) => SpecInput | null | undefined;
type Cmdbs = (profile: string) => readonly CmdbEntry[] | null | undefined;

/** `state` as the engine's profiles: an entry's position is its id (a name listed twice keeps two counts, as in eDeploy). */
function stateProfiles(state: readonly StateEntry[], specsFor: Specs, withPools: boolean): EngineProfile[] {
  return state.map((entry, index) => ({
    id: String(index),
    name: entry.profile,
    get quota() {
      const q = quotaOf(entry.count, entry.profile);
      return q.unlimited ? null : q.remaining;
    },
    get specs() {
      return specsFor(entry.profile) ?? null;
    },
    poolId: withPools ? entry.profile : null,
  }));
}

/** `state` with the counts the ledger changed, as ints (as eDeploy wrote them). */
function stateAfter(state: readonly StateEntry[], profiles: readonly EngineProfile[], ledger: MemoryLedger, changed: ReadonlySet<string>): StateEntry[] {
  return state.map((e, i) => (changed.has(String(i)) ? { profile: e.profile, count: ledger.remaining(profiles[i]!)! } : { ...e }));
}

/**
 * One machine through the matching engine over `state` and the files' pools, in memory:
 * each profile's pool is the CMDB of its name. Counts and specs are read
 * when the engine reaches them. Throws eDeploy's errors when nothing matches or the pool
 * cannot serve the machine.
 */
function resolveState(state: readonly StateEntry[], hw: readonly HwTuple[], specsFor: Specs, cmdbFor: Cmdbs | null, options: SelectOptions) {
  const profiles = stateProfiles(state, specsFor, cmdbFor !== null);
  const ledger = new MemoryLedger(profiles, (pool) => {
    const list = cmdbFor?.(pool);
    // No CMDB, or an empty one, means no pool in eDeploy.
    if (!list || list.length === 0) return null;
    return list.map((data, i) => ({ id: String(i), position: i, data, original: data, machineId: null }));
  });
  const machine = { id: null, hw, holding: { profileId: null, quotaHeld: false }, entry: null };
  const a = allocateSync(machine, profiles, ledger, options);
  if (!a.profile) throw noMatchError(a.tried, { stateFile: options.stateFile ?? 'state', configDir: options.configDir ?? '.' });
  if (a.failure) throw a.failure;
  const index = Number(a.profile.id);
  const next = stateAfter(state, profiles, ledger, new Set(a.quota === 'taken' ? [a.profile.id] : []));
  const pool = a.entry && a.profile.poolId !== null ? ledger.entries(a.profile.poolId) : null;
  return { a, index, state: next, pool };
}

/**
 * Finds the profile for a machine. `specsFor` returns a profile's spec list, or null when it
 * has none (such a profile never matches, as eDeploy's `<unknown>` spec). Throws
 * EdeployError with eDeploy's messages when nothing matches.
 */
export function selectProfile(state: readonly StateEntry[], hw: readonly HwTuple[], specsFor: Specs, options: SelectOptions = {}): ProfileMatch {
  const { a, index, state: next } = resolveState(state, hw, specsFor, null, options);
  return { index, profile: a.profile.name, vars: a.vars, cmdbVars: a.cmdbVars, forced: Object.keys(a.cmdbVars).length > 0, state: next };
}

/** eDeploy's `failed_profile`: gives one back to the first entry named `profile`, unless it is `'*'`. */
export function failProfile(state: readonly StateEntry[], profile: string): { changed: boolean; state: StateEntry[] } {
  const profiles = stateProfiles(state, () => null, false);
  const ledger = new MemoryLedger(profiles, () => null);
  const target = profiles.find((p) => p.name === profile);
  const changed = target !== undefined && ledger.remaining(target) !== null;
  if (changed) ledger.returnQuota(target.id);
  return { changed, state: stateAfter(state, profiles, ledger, new Set(changed ? [target.id] : [])) };
}

export interface Resolution {
  profile: string;
  /** The machine's variables, with the CMDB entry's fields when one was allocated. */
  vars: PyDict;
  state: StateEntry[];
  /** The profile's CMDB after allocation, or null when the profile has no (or an empty) pool. */
  cmdb: { entries: CmdbEntry[]; index: number; reused: boolean } | null;
}

/**
 * What eDeploy's server did for one machine: select the profile, then, if that profile has a
 * non-empty CMDB, allocate an entry from it. A CMDB error aborts the whole resolution (the
 * decremented quota is then not to be saved).
 */
export function resolveProfile(
  state: readonly StateEntry[],
  hw: readonly HwTuple[],
  sources: { specs: Specs; cmdb: Cmdbs },
  options: SelectOptions = {},
): Resolution {
  const { a, state: next, pool } = resolveState(state, hw, sources.specs, sources.cmdb, options);
  if (!a.entry || !pool) return { profile: a.profile.name, vars: { ...a.vars }, state: next, cmdb: null };
  return {
    profile: a.profile.name,
    vars: cloneValue(a.entry.data) as PyDict,
    state: next,
    cmdb: { entries: pool.map((e) => e.data), index: a.entry.entry.position, reused: a.entry.reused },
  };
}
