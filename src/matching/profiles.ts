import type { HwTuple } from '../core/facts.js';
import { validation } from '../core/errors.js';
import { allocateEntry, type CmdbEntry } from './cmdb.js';
import { noProfileMatched, noRoleAvailable } from './edeploy-errors.js';
import { matchAll, type MatchOptions } from './matcher.js';
import { parsePyInt } from './python-numbers.js';
import type { PyDict } from './python-values.js';
import type { SpecInput } from './spec-rules.js';

/**
 * Profile selection over eDeploy's `state` (an ordered list of `(profile, count)`), as
 * `State.find_match` and `State.failed_profile` did, over plain data:
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

/**
 * Finds the profile for a machine. `specsFor` returns a profile's spec list, or null when it
 * has none (such a profile never matches, as eDeploy's `<unknown>` spec). Throws
 * EdeployError with eDeploy's messages when nothing matches.
 */
export function selectProfile(
  state: readonly StateEntry[],
  hw: readonly HwTuple[],
  specsFor: (profile: string) => SpecInput | null | undefined,
  options: SelectOptions = {},
): ProfileMatch {
  const tried: string[] = [];
  for (const [index, entry] of state.entries()) {
    const quota = quotaOf(entry.count, entry.profile);
    if (!quota.unlimited && quota.remaining <= 0) continue;
    tried.push(entry.profile);
    const specs = specsFor(entry.profile);
    if (!specs) continue;
    const result = matchAll(specs, hw, options);
    if (!result.matched) continue;
    const next = state.map((e) => ({ ...e }));
    if (!quota.unlimited) next[index] = { profile: entry.profile, count: quota.remaining - 1 };
    return {
      index,
      profile: entry.profile,
      vars: result.vars,
      cmdbVars: result.cmdbVars,
      forced: Object.keys(result.cmdbVars).length > 0,
      state: next,
    };
  }
  if (tried.length === 0) throw noRoleAvailable(options.stateFile ?? 'state');
  throw noProfileMatched(options.configDir ?? '.', tried);
}

/** eDeploy's `failed_profile`: gives one back to the first entry named `profile`, unless it is `'*'`. */
export function failProfile(state: readonly StateEntry[], profile: string): { changed: boolean; state: StateEntry[] } {
  const next = state.map((e) => ({ ...e }));
  const index = next.findIndex((e) => e.profile === profile);
  if (index < 0) return { changed: false, state: next };
  const quota = quotaOf(next[index]!.count, profile);
  if (quota.unlimited) return { changed: false, state: next };
  next[index] = { profile, count: quota.remaining + 1 };
  return { changed: true, state: next };
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
  sources: {
    specs: (profile: string) => SpecInput | null | undefined;
    cmdb: (profile: string) => readonly CmdbEntry[] | null | undefined;
  },
  options: SelectOptions = {},
): Resolution {
  const match = selectProfile(state, hw, sources.specs, options);
  const pool = sources.cmdb(match.profile);
  if (!pool || pool.length === 0) {
    return { profile: match.profile, vars: { ...match.vars }, state: match.state, cmdb: null };
  }
  const allocation = allocateEntry(pool, match.vars, match.cmdbVars);
  return {
    profile: match.profile,
    vars: allocation.vars,
    state: match.state,
    cmdb: { entries: allocation.entries, index: allocation.index, reused: allocation.reused },
  };
}
