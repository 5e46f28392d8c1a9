import type { HwTuple } from '../core/facts.js';
import { checkElement, compileSpecs, type CompiledSpec, type SpecInput } from './spec-rules.js';

/**
 * eDeploy's matcher (`match_spec` / `match_all`), same algorithm and same answers:
 * - each spec, in file order, takes the first hardware line that matches it, first by exact
 *   equality of the whole line, then position by position (literals, `$var`, functions,
 *   `$var=function`, and `$var=literal` per decision 4);
 * - variables are bound only once all four positions pass, and a variable already bound must
 *   see the same value again;
 * - when a spec binds a new variable a backtracking point is kept; when a later spec finds no
 *   line, the points are retried last-in first-out, each retry moving the line that spec had
 *   taken to the end of the list so the next candidate is tried first; recursion stops at
 *   depth 50;
 * - `$$var` is held as `$var` while matching and becomes `var` (and a CMDB lookup key) when
 *   the match succeeds.
 * Unlike eDeploy (decision 5) nothing leaks: a failed match returns no bindings, and the
 * `$var` key eDeploy left behind after a successful backtrack is dropped.
 *
 * One guard eDeploy lacks: the search counts the hardware lines it examines and gives up
 * after `maxSteps`. A failing match with many variables makes eDeploy's backtracking try
 * astronomically many orders (each retry chain runs to depth 50); eDeploy would hang there,
 * Plinth answers "no match" and says the limit was reached. A spec that no hardware line can
 * satisfy even with every variable free is detected up front, so ordinary mismatches never
 * get near the limit.
 */

export const MAX_BACKTRACK_DEPTH = 50;
export const DEFAULT_MAX_STEPS = 5_000_000;

export interface MatchOptions {
  /** Hardware lines examined before giving up; see above. */
  maxSteps?: number;
}

export interface MatchResult {
  matched: boolean;
  /** Every `$var` and `$$var`, by bare name. Empty when not matched. */
  vars: Record<string, string>;
  /** The `$$var` variables alone: when not empty, the only keys used to find a CMDB entry. */
  cmdbVars: Record<string, string>;
  /** True when the search gave up at `maxSteps` rather than exhausting the possibilities. */
  limitReached: boolean;
}

export interface SpecMatch {
  /** Index of the matched line in the list given. */
  index: number;
  line: HwTuple;
  /** `bound` plus what this spec bound (`$$x` appears as `$x`, as during matching). */
  bindings: Record<string, string>;
}

class StepLimit extends Error {}

function sameLine(a: HwTuple, b: HwTuple): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

function sameMap(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export function toRecord(m: ReadonlyMap<string, string>): Record<string, string> {
  return Object.fromEntries(m);
}

/**
 * Finds the line `spec` takes among `order` (indices into `hw`), eDeploy's `match_spec`:
 * returns the position in `order` of that line and the variables to bind, or null.
 * `onStep` is told how many lines were examined.
 */
export function findLine(
  spec: CompiledSpec,
  hw: readonly HwTuple[],
  order: readonly number[],
  bound: ReadonlyMap<string, string>,
  onStep?: (n: number) => void,
): { at: number; binds: [string, string][] } | null {
  onStep?.(order.length);
  for (let at = 0; at < order.length; at++) {
    if (sameLine(hw[order[at]!]!, spec.tuple)) return { at, binds: [] };
  }
  onStep?.(order.length);
  const els = spec.elements;
  for (let at = 0; at < order.length; at++) {
    const line = hw[order[at]!]!;
    // A literal that differs rejects the line without building the failure checkElement would describe.
    if (rejectsLiteral(els, line)) continue;
    const binds: [string, string][] = [];
    let ok = true;
    for (let pos = 0; pos < 4; pos++) {
      const outcome = checkElement(spec.elements[pos]!, line[pos]!, bound);
      if (!outcome.ok) {
        ok = false;
        break;
      }
      if (outcome.bind !== undefined) binds.push([outcome.bind, line[pos]!]);
    }
    if (ok) return { at, binds };
  }
  return null;
}

function rejectsLiteral(els: CompiledSpec['elements'], line: HwTuple): boolean {
  for (let pos = 0; pos < 4; pos++) {
    const el = els[pos]!;
    if (el.kind === 'literal' && el.text !== line[pos]) return true;
  }
  return false;
}

/**
 * A hardware list prepared once for matching against many spec lists (every profile tried
 * for one machine): its lines grouped by category (the first value), and whether each spec
 * line seen so far can take any line at all. That answer depends only on the spec line and
 * the hardware, so profiles sharing a rule ask it once.
 */
export class HardwareIndex {
  readonly all: readonly number[];
  private readonly byCategory = new Map<string, number[]>();
  private readonly satisfiable = new Map<string, boolean>();

  constructor(readonly hw: readonly HwTuple[]) {
    this.all = hw.map((_, i) => i);
    hw.forEach((line, i) => {
      const list = this.byCategory.get(line[0]);
      if (list) list.push(i);
      else this.byCategory.set(line[0], [i]);
    });
  }

  /** True when some line matches `spec` with every variable free. */
  canMatch(spec: CompiledSpec): boolean {
    const key = spec.tuple.join('\u0000');
    let ok = this.satisfiable.get(key);
    if (ok === undefined) {
      const category = spec.elements[0];
      const lines = category.kind === 'literal' ? (this.byCategory.get(category.text) ?? []) : this.all;
      ok = findLine(spec, this.hw, lines, NO_BINDINGS) !== null;
      this.satisfiable.set(key, ok);
    }
    return ok;
  }
}

const NO_BINDINGS: ReadonlyMap<string, string> = new Map();

const asIndex = (hw: readonly HwTuple[] | HardwareIndex): HardwareIndex => (hw instanceof HardwareIndex ? hw : new HardwareIndex(hw));

type Point = [lines: number[], specs: number[], bound: Map<string, string>];

class Search {
  steps = 0;

  constructor(
    private readonly hw: readonly HwTuple[],
    private readonly specs: readonly CompiledSpec[],
    private readonly maxSteps: number,
  ) {}

  private count = (n: number): void => {
    this.steps += n;
    if (this.steps > this.maxSteps) throw new StepLimit();
  };

  /** eDeploy's `match_all` at one recursion level; mutates `arr` and `arr2` like it. */
  run(order: readonly number[], specIdx: readonly number[], arr: Map<string, string>, arr2: Map<string, string>, level: number): boolean {
    if (level === MAX_BACKTRACK_DEPTH) return false;
    const lines = [...order];
    const specs = [...specIdx];
    let copyArr = new Map(arr);
    const points: Point[] = [];
    while (specs.length > 0) {
      const copySpecs = [...specs];
      const s = specs.shift()!;
      const found = findLine(this.specs[s]!, this.hw, lines, arr, this.count);
      if (found === null) {
        while (points.length > 0) {
          const [pLines, pSpecs, pArr] = points.pop()!;
          if (this.run(pLines, pSpecs, pArr, arr2, level + 1)) {
            // The retry's bindings replace this level's: what this level bound after the
            // point belonged to the abandoned attempt (decision 5 drops eDeploy's stale keys).
            arr.clear();
            for (const [k, v] of pArr) arr.set(k, v);
            return true;
          }
        }
        return false;
      }
      for (const [name, value] of found.binds) arr.set(name, value);
      const [taken] = lines.splice(found.at, 1);
      if (!sameMap(arr, copyArr)) {
        points.push([[...lines, taken!], copySpecs, copyArr]);
        copyArr = new Map(arr);
      }
    }
    for (const key of [...arr.keys()]) {
      if (key.startsWith('$')) {
        const name = key.slice(1);
        const value = arr.get(key)!;
        arr.set(name, value);
        arr2.set(name, value);
        arr.delete(key);
      }
    }
    return true;
  }
}

/**
 * The first spec (in order) that no hardware line can match even with all variables free,
 * or -1. Bindings only ever narrow what a spec accepts, so such a spec fails on every
 * backtracking path: eDeploy would end up answering "no match" too.
 */
export function firstUnsatisfiable(specs: readonly CompiledSpec[], hw: readonly HwTuple[] | HardwareIndex): number {
  const index = asIndex(hw);
  return specs.findIndex((spec) => !index.canMatch(spec));
}

/**
 * Matches a spec list against a hardware list: eDeploy's `match_all`. Inputs are not modified.
 * Matching one machine against many spec lists, pass the list once as a `HardwareIndex`.
 */
export function matchAll(specs: SpecInput, hardware: readonly HwTuple[] | HardwareIndex, options: MatchOptions = {}): MatchResult {
  const compiled = compileSpecs(specs);
  const none: MatchResult = { matched: false, vars: {}, cmdbVars: {}, limitReached: false };
  const index = asIndex(hardware);
  if (firstUnsatisfiable(compiled, index) >= 0) return none;
  const hw = index.hw;
  const search = new Search(hw, compiled, options.maxSteps ?? DEFAULT_MAX_STEPS);
  const arr = new Map<string, string>();
  const arr2 = new Map<string, string>();
  try {
    const ok = search.run(
      index.all,
      compiled.map((_, i) => i),
      arr,
      arr2,
      0,
    );
    if (!ok) return none;
  } catch (e) {
    if (e instanceof StepLimit) return { ...none, limitReached: true };
    throw e;
  }
  return { matched: true, vars: toRecord(arr), cmdbVars: toRecord(arr2), limitReached: false };
}

/**
 * eDeploy's `match_spec` for one spec, without modifying anything: the first line `spec`
 * takes given the variables already `bound`, or null.
 */
export function matchSpec(
  spec: HwTuple | readonly string[] | CompiledSpec,
  lines: readonly HwTuple[],
  bound: Readonly<Record<string, string>> = {},
): SpecMatch | null {
  const [compiled] = compileSpecs([spec]);
  const arr = new Map(Object.entries(bound));
  const found = findLine(
    compiled!,
    lines,
    lines.map((_, i) => i),
    arr,
  );
  if (found === null) return null;
  for (const [k, v] of found.binds) arr.set(k, v);
  return { index: found.at, line: lines[found.at]!, bindings: toRecord(arr) };
}
