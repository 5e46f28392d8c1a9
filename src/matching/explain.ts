import type { HwTuple } from '../core/facts.js';
import { findLine, matchAll, toRecord, type MatchOptions, type MatchResult } from './matcher.js';
import { formatLocation, type SourceLocation } from './source-error.js';
import { checkElement, compileSpecs, describeFailure, type CompiledSpec, type ElementFailure, type SpecInput } from './spec-rules.js';

/**
 * Why a spec list does or does not match a machine. The rule reported is the one eDeploy's
 * matcher stops at on its first-fit pass (the pass every backtracking retry starts from):
 * with the variables bound at that moment, the hardware lines that came closest to it and,
 * for each, the first position that rejected it and why.
 */

export type RuleFailureKind =
  /** No hardware line can match the rule, whatever the variables. */
  | 'no-candidate'
  /** Lines would match, but every one was taken by an earlier rule. */
  | 'lines-taken'
  /** Lines would match with other variable values; backtracking found no other choice. */
  | 'conflict';

export interface NearMiss {
  /** Index of the line in the hardware list. */
  lineIndex: number;
  line: HwTuple;
  /** How many of the four positions accept the line. */
  positionsMatched: number;
  /** The first rejecting position (0-3) and why; null when only `takenBy` stands in the way. */
  position: number | null;
  failure: ElementFailure | null;
  /** The rule that took this line on the first-fit pass, if one did. */
  takenBy: number | null;
}

export interface RuleFailure {
  kind: RuleFailureKind;
  /** Index of the rule in the spec list, from 0. */
  specIndex: number;
  spec: HwTuple;
  at: SourceLocation | undefined;
  /** Variables bound (as during matching: `$$x` appears as `$x`) when the rule failed. */
  bound: Record<string, string>;
  nearMisses: NearMiss[];
  message: string;
}

export interface MatchExplanation extends MatchResult {
  failure: RuleFailure | null;
  /** A human-readable account, several lines. */
  text: string;
}

const MAX_NEAR_MISSES = 3;

function showTuple(t: readonly string[]): string {
  return `(${t.map((v) => `'${v}'`).join(', ')})`;
}

function ruleName(spec: CompiledSpec): string {
  const where = spec.at ? ` at ${formatLocation(spec.at)}` : '';
  return `rule ${spec.index + 1} ${showTuple(spec.tuple)}${where}`;
}

interface Assessment {
  matched: number;
  /** Positions accepted before the first rejection: a line of the right class and name is closer. */
  prefix: number;
  position: number | null;
  failure: ElementFailure | null;
}

function assess(spec: CompiledSpec, line: HwTuple, bound: ReadonlyMap<string, string>): Assessment {
  let matched = 0;
  let position: number | null = null;
  let failure: ElementFailure | null = null;
  for (let pos = 0; pos < 4; pos++) {
    const outcome = checkElement(spec.elements[pos]!, line[pos]!, bound);
    if (outcome.ok) matched++;
    else if (failure === null) {
      position = pos;
      failure = outcome.failure;
    }
  }
  const exact = line.every((v, i) => v === spec.tuple[i]);
  if (exact) return { matched: 4, prefix: 4, position: null, failure: null };
  return { matched, prefix: position ?? 4, position, failure };
}

function describeRuleFailure(spec: CompiledSpec, kind: RuleFailureKind, misses: NearMiss[]): string {
  const head = ruleName(spec);
  const lines: string[] = [];
  switch (kind) {
    case 'no-candidate':
      lines.push(`${head} matches no hardware line.`);
      break;
    case 'lines-taken':
      lines.push(`${head} only matches hardware lines already taken by earlier rules.`);
      break;
    case 'conflict':
      lines.push(`${head} matches no remaining hardware line with the variables bound so far, and no other choice for earlier rules helped.`);
      break;
  }
  for (const miss of misses) {
    const why =
      miss.failure !== null
        ? `position ${miss.position! + 1}: ${describeFailure(miss.failure)}`
        : `already taken by rule ${miss.takenBy! + 1}`;
    const taken = miss.failure !== null && miss.takenBy !== null ? ` (also taken by rule ${miss.takenBy + 1})` : '';
    lines.push(`  closest: ${showTuple(miss.line)}: ${why}${taken}`);
  }
  return lines.join('\n');
}

/** Matches `specs` against `hw` and says why the answer is what it is. */
export function explainMatch(specs: SpecInput, hw: readonly HwTuple[], options: MatchOptions = {}): MatchExplanation {
  const compiled = compileSpecs(specs);
  const result = matchAll(compiled, hw, options);
  if (result.matched) {
    const names = Object.keys(result.vars);
    const text = `matched${names.length ? `: ${names.map((n) => `${n}=${result.vars[n]}`).join(', ')}` : ''}`;
    return { ...result, failure: null, text };
  }

  // Replay the first-fit pass to find where it stops.
  const order = hw.map((_, i) => i);
  const bound = new Map<string, string>();
  const takenBy = new Map<number, number>();
  let failed: CompiledSpec | null = null;
  for (const spec of compiled) {
    const found = findLine(spec, hw, order, bound);
    if (found === null) {
      failed = spec;
      break;
    }
    for (const [k, v] of found.binds) bound.set(k, v);
    takenBy.set(order[found.at]!, spec.index);
    order.splice(found.at, 1);
  }
  if (failed === null) {
    // Only the step limit can make a first-fit success end as "no match".
    const text = 'no match: the search gave up at its step limit';
    return { ...result, failure: null, text };
  }

  const fresh = new Map<string, string>();
  const anyLine = findLine(failed, hw, hw.map((_, i) => i), fresh) !== null;
  const remainingFresh = findLine(failed, hw, order, fresh) !== null;
  const kind: RuleFailureKind = !anyLine ? 'no-candidate' : remainingFresh ? 'conflict' : 'lines-taken';

  // Closest first: lines that would fit with other variable values, then lines that agree
  // on more leading positions (same class, same name...), then on more positions.
  const misses: NearMiss[] = hw
    .map((line, lineIndex) => {
      const a = assess(failed!, line, kind === 'lines-taken' ? fresh : bound);
      const fits = a.failure === null || assess(failed!, line, fresh).failure === null;
      const miss: NearMiss = { lineIndex, line, positionsMatched: a.matched, position: a.position, failure: a.failure, takenBy: takenBy.get(lineIndex) ?? null };
      return { miss, fits, prefix: a.prefix };
    })
    .filter(({ miss }) => (kind === 'lines-taken' ? miss.failure === null : true))
    .sort((a, b) => Number(b.fits) - Number(a.fits) || b.prefix - a.prefix || b.miss.positionsMatched - a.miss.positionsMatched || a.miss.lineIndex - b.miss.lineIndex)
    .slice(0, MAX_NEAR_MISSES)
    .map(({ miss }) => miss);

  const message = describeRuleFailure(failed, kind, misses);
  const failure: RuleFailure = {
    kind,
    specIndex: failed.index,
    spec: failed.tuple,
    at: failed.at,
    bound: toRecord(bound),
    nearMisses: misses,
    message,
  };
  const limit = result.limitReached ? '\n(the backtracking search also reached its step limit)' : '';
  return { ...result, failure, text: `no match: ${message}${limit}` };
}
