import type { HwTuple } from '../core/facts.js';
import { allocateEntry, isEntryUsed, matchAll, type CompiledSpec, type MatchResult, type PyDict } from '../matching/index.js';
import { CMDB_EXHAUSTED_MESSAGE, EdeployError } from '../matching/index.js';

/**
 * The decisions of matching, over plain data, shared by inspection (against the database)
 * and simulation (against copies in memory), so both give the same answers:
 * - profiles are tried in order; one whose quota is used up is not tried (eDeploy), unless
 *   the machine already holds that profile's quota (a re-inspected machine does not take a
 *   second one);
 * - the first profile whose spec matches and whose quota can be taken wins;
 * - its pool (if any) gives the machine an entry: eDeploy's rule (an entry carrying the
 *   machine's lookup variables is reused, else the first free one), restricted to entries no
 *   other machine holds.
 */

export interface ProfileCandidate {
  id: string;
  name: string;
  /** Remaining count, or null for unlimited. */
  quota: number | null;
  specs: readonly CompiledSpec[];
}

export interface Holding {
  /** The profile the machine matched before, if any. */
  profileId: string | null;
  /** It counts against that profile's quota. */
  quotaHeld: boolean;
}

export type QuotaOutcome =
  /** Unlimited profile: nothing taken. */
  | 'unlimited'
  /** The machine already held this profile's quota. */
  | 'kept'
  /** One was taken now. */
  | 'taken';

export type Selection<P extends ProfileCandidate> =
  | { profile: P; vars: Record<string, string>; cmdbVars: Record<string, string>; quota: QuotaOutcome; tried: string[] }
  | { profile: null; tried: string[] };

/** True when eDeploy would try the profile at all for this machine. */
export function isEligible(p: ProfileCandidate, holding: Holding): boolean {
  if (p.quota === null || p.quota > 0) return true;
  return holding.quotaHeld && holding.profileId === p.id;
}

/**
 * Picks the profile. `takeQuota` takes one from a limited profile and says whether it
 * could (the database does it with a conditional update; another machine may have taken the
 * last one since the profiles were read). `matchOf` lets callers reuse match results.
 */
export async function selectProfileFor<P extends ProfileCandidate>(
  profiles: readonly P[],
  hw: readonly HwTuple[],
  holding: Holding,
  takeQuota: (p: P) => Promise<boolean> | boolean,
  matchOf: (p: P) => MatchResult = (p) => matchAll(p.specs, hw),
): Promise<Selection<P>> {
  const tried: string[] = [];
  for (const p of profiles) {
    if (!isEligible(p, holding)) continue;
    tried.push(p.name);
    const result = matchOf(p);
    if (!result.matched) continue;
    let quota: QuotaOutcome;
    if (p.quota === null) quota = 'unlimited';
    else if (holding.quotaHeld && holding.profileId === p.id) quota = 'kept';
    else if (await takeQuota(p)) quota = 'taken';
    else continue;
    return { profile: p, vars: result.vars, cmdbVars: result.cmdbVars, quota, tried };
  }
  return { profile: null, tried };
}

/** Where profiles live, named in eDeploy's messages in place of its `state` file and CONFIGDIR. */
export const PROFILES_LABEL = 'profiles';

/** eDeploy's message when no profile matched (and which profiles were tried). */
export function noMatchMessage(tried: readonly string[], profileCount: number): string | null {
  if (profileCount === 0) return null;
  if (tried.length === 0) return `No more role available in ${PROFILES_LABEL}`;
  return `Unable to match requirements on the following available roles in ${PROFILES_LABEL}: ${tried.join(', ')}`;
}

export interface EntryState {
  id: string;
  position: number;
  /** What the entry holds now. */
  data: PyDict;
  /** The entry as written or generated. */
  original: PyDict;
  machineId: string | null;
}

export interface EntryChoice {
  entry: EntryState;
  /** The entry's new content, which is also the machine's variables. */
  data: PyDict;
  /** Found by the machine's variables (or already its own) rather than taken free. */
  reused: boolean;
}

/**
 * eDeploy's `update_cmdb` without ever giving one entry to two machines: entries held by
 * another machine are out of reach. With no lookup variables at all, every entry would
 * "carry" them (eDeploy then handed entry 0 to everybody); the machine keeps the entry it
 * holds, or takes the first free one. Throws EdeployError with eDeploy's messages.
 */
export function chooseEntry(
  entries: readonly EntryState[],
  machineId: string,
  vars: Readonly<Record<string, string>>,
  cmdbVars: Readonly<Record<string, string>>,
): EntryChoice {
  if (entries.length === 0) throw new EdeployError('cmdb-exhausted', CMDB_EXHAUSTED_MESSAGE, { entries: 0 });
  const forced = Object.keys(cmdbVars).length > 0;
  const lookup = forced ? cmdbVars : vars;
  let candidates = entries.filter((e) => e.machineId === null || e.machineId === machineId);
  if (Object.keys(lookup).length === 0) {
    const mine = candidates.find((e) => e.machineId === machineId);
    candidates = mine ? [mine] : candidates.filter((e) => !isEntryUsed(e.data));
  }
  const a = allocateEntry(
    candidates.map((e) => e.data),
    vars,
    cmdbVars,
  );
  const entry = candidates[a.index]!;
  return { entry, data: a.vars, reused: a.reused || entry.machineId === machineId };
}

/** A freed entry is its original content with no `used` mark: eDeploy's free form. */
export function freedData(original: PyDict): PyDict {
  const out: PyDict = {};
  for (const [k, v] of Object.entries(original)) if (k !== 'used') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}
