import type { HwTuple } from '../core/facts.js';
import { allocateEntry, isEntryUsed } from './cmdb.js';
import { CMDB_EXHAUSTED_MESSAGE, EdeployError, isEdeployError, noProfileMatched, noRoleAvailable } from './edeploy-errors.js';
import { HardwareIndex, matchAll, type MatchOptions, type MatchResult } from './matcher.js';
import type { PyDict } from './python-values.js';
import type { SpecInput } from './spec-rules.js';

/**
 * The matching engine: what happens to one machine's quotas and pool entries, written once
 * and used by the real match (a SQL ledger inside the inspection's transaction), by
 * simulation and by eDeploy's state-file mode (in-memory ledgers), so all three give the
 * same answers:
 * - profiles are tried in order; one whose quota is used up is not tried (eDeploy), unless
 *   the machine already holds that profile's quota (a re-inspected machine does not take a
 *   second one);
 * - the first profile whose spec matches and whose quota can be taken wins; a quota held
 *   for another profile is given back;
 * - its pool (if any) gives the machine an entry: eDeploy's rule (an entry carrying the
 *   machine's lookup variables is reused, else the first free one), restricted to entries no
 *   other machine holds; when no entry can be given, eDeploy aborted: the quota taken is
 *   given back and the machine holds nothing;
 * - whatever the machine held and no longer holds goes back.
 *
 * The engine never reads or writes storage itself: every quota and entry operation goes
 * through a `Ledger`. It is written as a generator of ledger operations so that one body
 * runs synchronously over an in-memory ledger (eDeploy's state functions are synchronous)
 * and awaits each operation over the SQL one.
 */

export interface EngineProfile {
  id: string;
  name: string;
  /** What was left to take when the profile was read, or null for unlimited. */
  readonly quota: number | null;
  /** The spec; null when the profile has none (it never matches, as eDeploy's `<unknown>` spec). */
  readonly specs: SpecInput | null;
  /** The pool the profile allocates from, or null. */
  poolId: string | null;
}

/** A pool entry as allocation sees it. */
export interface EntryState {
  id: string;
  position: number;
  /** What the entry holds now. */
  data: PyDict;
  /** The entry as written or generated. */
  original: PyDict;
  machineId: string | null;
}

export interface EntryRef {
  id: string;
  poolId: string;
}

export interface Holding {
  /** The profile the machine matched before, if any. */
  profileId: string | null;
  /** It counts against that profile's quota. */
  quotaHeld: boolean;
}

export interface MachineToMatch {
  /**
   * The machine; null for an anonymous one (eDeploy's state-file mode), which holds nothing
   * and gets eDeploy's own entry rule, since its CMDB records no holders.
   */
  id: string | null;
  hw: readonly HwTuple[];
  holding: Holding;
  /** The pool entry it holds now, if any. */
  entry: EntryRef | null;
}

/**
 * The quotas and pool entries matching works on. Every method may answer at once (in
 * memory) or through a promise (the database).
 */
export interface LedgerOps {
  /** What is left of a profile's quota (null: unlimited). */
  remaining(profile: EngineProfile): number | null;
  /** Takes one from a limited quota; false when none is left (another machine took the last one). */
  takeQuota(profile: EngineProfile): boolean;
  /** Gives one back to a profile's quota; an unlimited or unknown profile is left alone. */
  returnQuota(profileId: string): void;
  /** A pool's entries in order, read for allocation (`alsoLock`: other pools this allocation may write). */
  entries(poolId: string, alsoLock: readonly string[]): EntryState[] | null;
  /** Gives the entry to the machine with its new content. */
  claimEntry(entry: EntryState, machineId: string | null, data: PyDict): void;
  /** Frees an entry the machine holds: back to its original content, without a `used` mark. */
  freeEntry(entry: EntryRef, machineId: string): void;
  /**
   * Called before anything changes when the machine may give a quota back after taking
   * another: every profile it may change. Ledgers that lock rows lock them here, in one order.
   */
  lockProfiles?(ids: readonly string[]): void;
}

type MaybeAsync<F> = F extends (...args: infer A) => infer R ? (...args: A) => R | Promise<R> : never;
/** A ledger whose operations may be asynchronous (the database). */
export type Ledger = { [K in keyof LedgerOps]: MaybeAsync<LedgerOps[K]> };
/** A ledger that answers at once (in memory): the engine then runs synchronously. */
export type SyncLedger = LedgerOps;

export type QuotaOutcome =
  /** Unlimited profile: nothing taken. */
  | 'unlimited'
  /** The machine already held this profile's quota. */
  | 'kept'
  /** One was taken now. */
  | 'taken';

export interface EntryChoice {
  entry: EntryState;
  /** The entry's new content, which is also the machine's variables. */
  data: PyDict;
  /** Found by the machine's variables (or already its own) rather than taken free. */
  reused: boolean;
}

export type MatchOutcome<P extends EngineProfile> =
  /** No profile matched (or none had quota left): the machine holds nothing. */
  | { profile: null; tried: string[] }
  | {
      profile: P;
      /** Every spec variable, by bare name. */
      vars: Record<string, string>;
      /** The `$$` variables alone. */
      cmdbVars: Record<string, string>;
      quota: QuotaOutcome;
      tried: string[];
      /** The entry given, or null when the profile has no pool. */
      entry: EntryChoice | null;
      /** When the pool could not serve the machine (eDeploy's message): it then holds nothing. */
      failure: EdeployError | null;
    };

type Op = { [K in keyof LedgerOps]-?: { op: K; args: Parameters<NonNullable<LedgerOps[K]>> } }[keyof LedgerOps];
type Steps<R> = Generator<Op, R, unknown>;

/** One ledger operation; its answer comes back from the driver. */
function* call<K extends keyof LedgerOps>(op: K, ...args: Parameters<NonNullable<LedgerOps[K]>>): Steps<ReturnType<NonNullable<LedgerOps[K]>>> {
  return (yield { op, args } as Op) as ReturnType<NonNullable<LedgerOps[K]>>;
}

function perform(ledger: Ledger, op: Op): unknown {
  const fn = ledger[op.op] as ((...args: unknown[]) => unknown) | undefined;
  return fn?.apply(ledger, op.args);
}

export interface EngineOptions extends MatchOptions {
  /** Reuse match results between calls (keyed by profile id). */
  matches?: Map<string, MatchResult>;
}

/** Matches `machine` against `profiles` (in the order they are tried), through `ledger`. */
export async function allocate<P extends EngineProfile>(machine: MachineToMatch, profiles: readonly P[], ledger: Ledger, options: EngineOptions = {}): Promise<MatchOutcome<P>> {
  const steps = allocation(machine, profiles, ledger.lockProfiles !== undefined, options);
  let step = steps.next();
  while (!step.done) step = steps.next(await perform(ledger, step.value));
  return step.value;
}

/** `allocate` over a ledger that answers at once. */
export function allocateSync<P extends EngineProfile>(machine: MachineToMatch, profiles: readonly P[], ledger: SyncLedger, options: EngineOptions = {}): MatchOutcome<P> {
  const steps = allocation(machine, profiles, ledger.lockProfiles !== undefined, options);
  let step = steps.next();
  while (!step.done) step = steps.next(perform(ledger, step.value));
  return step.value;
}

const NO_MATCH: MatchResult = { matched: false, vars: {}, cmdbVars: {}, limitReached: false };

function* allocation<P extends EngineProfile>(machine: MachineToMatch, profiles: readonly P[], locksProfiles: boolean, options: EngineOptions): Steps<MatchOutcome<P>> {
  const { holding } = machine;
  const matches = options.matches ?? new Map<string, MatchResult>();
  let hw: HardwareIndex | undefined;
  const matchOf = (p: P): MatchResult => {
    let r = matches.get(p.id);
    if (!r) {
      const specs = p.specs;
      matches.set(p.id, (r = specs ? matchAll(specs, (hw ??= new HardwareIndex(machine.hw)), options) : NO_MATCH));
    }
    return r;
  };
  const holds = (p: P) => holding.quotaHeld && holding.profileId === p.id;
  const eligible = (p: P, left: number | null) => isEligible(p, left, holding);

  if (holding.quotaHeld && locksProfiles) {
    // This machine may give its old quota back after taking a new one: every profile it
    // may change is locked, in one order, before any changes.
    const touched: string[] = [];
    for (const p of profiles) {
      const left = yield* call('remaining', p);
      if (left !== null && eligible(p, left) && matchOf(p).matched) touched.push(p.id);
    }
    yield* call('lockProfiles', [...touched, holding.profileId!]);
  }

  const tried: string[] = [];
  let chosen: { profile: P; result: MatchResult; quota: QuotaOutcome } | null = null;
  for (const p of profiles) {
    const left = yield* call('remaining', p);
    if (!eligible(p, left)) continue;
    tried.push(p.name);
    const result = matchOf(p);
    if (!result.matched) continue;
    let quota: QuotaOutcome;
    if (left === null) quota = 'unlimited';
    else if (holds(p)) quota = 'kept';
    else if (yield* call('takeQuota', p)) quota = 'taken';
    else continue;
    chosen = { profile: p, result, quota };
    break;
  }

  const freeOld = function* (keep: string | null): Steps<void> {
    if (machine.entry && machine.id !== null && machine.entry.id !== keep) yield* call('freeEntry', machine.entry, machine.id);
  };

  if (!chosen) {
    if (holding.quotaHeld) yield* call('returnQuota', holding.profileId!);
    yield* freeOld(null);
    return { profile: null, tried };
  }

  const { profile, result, quota } = chosen;
  if (holding.quotaHeld && holding.profileId !== profile.id) yield* call('returnQuota', holding.profileId!);
  const matched = { profile, vars: result.vars, cmdbVars: result.cmdbVars, quota, tried };
  const entries = profile.poolId === null ? null : yield* call('entries', profile.poolId, machine.entry ? [machine.entry.poolId] : []);
  if (entries === null) {
    yield* freeOld(null);
    return { ...matched, entry: null, failure: null };
  }

  let choice: EntryChoice;
  try {
    choice = chooseEntry(entries, machine.id, result.vars, result.cmdbVars);
  } catch (e) {
    if (!isEdeployError(e)) throw e;
    // eDeploy aborted the whole resolution: the quota taken is given back, nothing is held.
    if (quota !== 'unlimited') yield* call('returnQuota', profile.id);
    yield* freeOld(null);
    return { ...matched, entry: null, failure: e };
  }
  yield* freeOld(choice.entry.id);
  yield* call('claimEntry', choice.entry, machine.id, choice.data);
  return { ...matched, entry: choice, failure: null };
}

/** True when eDeploy would try the profile at all for this machine: quota left, or the machine holds one of it. */
export function isEligible(profile: { id: string }, remaining: number | null, holding: Holding): boolean {
  return remaining === null || remaining > 0 || (holding.quotaHeld && holding.profileId === profile.id);
}

/**
 * eDeploy's `update_cmdb` without ever giving one entry to two machines: entries held by
 * another machine are out of reach. With no lookup variables at all, every entry would
 * "carry" them (eDeploy then handed entry 0 to everybody); the machine keeps the entry it
 * holds, or takes the first free one. An anonymous machine (`machineId` null, eDeploy's
 * state-file mode, whose CMDB records no holders) gets eDeploy's rule unchanged. Throws
 * EdeployError with eDeploy's messages.
 */
export function chooseEntry(
  entries: readonly EntryState[],
  machineId: string | null,
  vars: Readonly<Record<string, string>>,
  cmdbVars: Readonly<Record<string, string>>,
): EntryChoice {
  if (entries.length === 0) throw new EdeployError('cmdb-exhausted', CMDB_EXHAUSTED_MESSAGE, { entries: 0 });
  let candidates: readonly EntryState[] = entries;
  if (machineId !== null) {
    const forced = Object.keys(cmdbVars).length > 0;
    const lookup = forced ? cmdbVars : vars;
    candidates = entries.filter((e) => e.machineId === null || e.machineId === machineId);
    if (Object.keys(lookup).length === 0) {
      const mine = candidates.find((e) => e.machineId === machineId);
      candidates = mine ? [mine] : candidates.filter((e) => !isEntryUsed(e.data));
    }
  }
  const a = allocateEntry(
    candidates.map((e) => e.data),
    vars,
    cmdbVars,
  );
  const entry = candidates[a.index]!;
  return { entry, data: a.vars, reused: a.reused || (machineId !== null && entry.machineId === machineId) };
}

/** A freed entry is its original content with no `used` mark: eDeploy's free form. */
export function freedData(original: PyDict): PyDict {
  const out: PyDict = {};
  for (const [k, v] of Object.entries(original)) if (k !== 'used') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * eDeploy's error when no profile matched: none had quota left, or those that had did not
 * match. `where` names the profiles' home (eDeploy named its state file and CONFIGDIR).
 */
export function noMatchError(tried: readonly string[], where: { stateFile: string; configDir: string }): EdeployError {
  return tried.length === 0 ? noRoleAvailable(where.stateFile) : noProfileMatched(where.configDir, tried);
}

/** Where profiles live in the database, named in eDeploy's messages in place of its `state` file and CONFIGDIR. */
export const PROFILES_LABEL = 'profiles';

/** eDeploy's message when no database profile matched; null when there are no profiles at all. */
export function noMatchMessage(tried: readonly string[], profileCount: number): string | null {
  if (profileCount === 0) return null;
  return noMatchError(tried, { stateFile: PROFILES_LABEL, configDir: PROFILES_LABEL }).message;
}
