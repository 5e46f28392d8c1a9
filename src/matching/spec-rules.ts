import type { HwTuple } from '../core/facts.js';
import { callShapeName, evaluateExpression, formatExpression, isSpecFunction, isTruthy, parseExpression, type CallNode, type EvalResult } from './expression.js';
import type { SourceLocation } from './source-error.js';

/**
 * One spec line compiled once: each of its four values classified the way eDeploy's
 * `match_spec` reads it (literal, `$var`, function, `$var=function`, `$var=literal`), so the
 * matcher, explain and the database-backed matching agree on what every value means.
 */

/** A spec line as read from a file, with where it came from when known. */
export interface SpecRule {
  tuple: HwTuple;
  at?: SourceLocation | undefined;
}

export type ElementRule =
  /** Compared exactly. */
  | { kind: 'literal'; text: string }
  /** `$name` or `$$name` (bound under `$name` until the match succeeds). */
  | { kind: 'variable'; text: string; name: string }
  /** `gt(4)`: the hardware value must satisfy it. */
  | { kind: 'function'; text: string; expr: CallNode }
  /** Has the shape of a call but is no known function, or does not parse: never matches per position. */
  | { kind: 'bad-function'; text: string; reason: string }
  /** `$size=gt(20)`: binds when the function holds. */
  | { kind: 'var-function'; text: string; name: string; expr: CallNode }
  /** `$x=foo(1)`: eDeploy compares the whole text literally. */
  | { kind: 'var-bad-function'; text: string; name: string; reason: string }
  /** `$v=literal`: binds when the value equals the literal (decision 4). */
  | { kind: 'var-literal'; text: string; name: string; literal: string };

export interface CompiledSpec {
  /** Position in the spec list, from 0. */
  index: number;
  tuple: HwTuple;
  at?: SourceLocation | undefined;
  elements: readonly [ElementRule, ElementRule, ElementRule, ElementRule];
}

export type SpecInput = readonly (HwTuple | readonly string[] | SpecRule | CompiledSpec)[];

/**
 * Classifies one spec value. As in eDeploy, a value starting with `$` is split on `=`:
 * exactly two parts give `$var=function` (or `$var=literal`); any other count leaves the
 * whole text as one variable name (or, with a call shape, an unknown function).
 */
export function compileElement(text: string): ElementRule {
  let varName: string | null = null;
  let func = text;
  if (text.startsWith('$')) {
    const parts = text.split('=');
    if (parts.length === 2) {
      varName = parts[0]!.slice(1);
      func = parts[1]!;
    }
  }
  const shape = callShapeName(func);
  if (shape !== null) {
    let reason: string;
    if (isSpecFunction(shape)) {
      const parsed = parseExpression(func);
      if (parsed.ok) {
        return varName === null ? { kind: 'function', text, expr: parsed.expr } : { kind: 'var-function', text, name: varName, expr: parsed.expr };
      }
      reason = `invalid expression '${func}': ${parsed.error}`;
    } else {
      reason = `'${func}' has the form of a call to '${shape}', which is not a spec function`;
    }
    return varName === null ? { kind: 'bad-function', text, reason } : { kind: 'var-bad-function', text, name: varName, reason };
  }
  if (varName !== null) return { kind: 'var-literal', text, name: varName, literal: func };
  if (text.startsWith('$')) return { kind: 'variable', text, name: text.slice(1) };
  return { kind: 'literal', text };
}

function isCompiled(x: unknown): x is CompiledSpec {
  return typeof x === 'object' && x !== null && 'elements' in x && 'tuple' in x;
}

function isRule(x: unknown): x is SpecRule {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'tuple' in x;
}

export function compileSpec(tuple: HwTuple | readonly string[], index: number, at?: SourceLocation): CompiledSpec {
  if (tuple.length !== 4 || tuple.some((v) => typeof v !== 'string')) {
    throw new TypeError(`spec ${index + 1} must be 4 strings, got ${JSON.stringify(tuple)}`);
  }
  const t = [...tuple] as HwTuple;
  return {
    index,
    tuple: t,
    at,
    elements: [compileElement(t[0]), compileElement(t[1]), compileElement(t[2]), compileElement(t[3])],
  };
}

/** Accepts raw tuples, rules read from a file, or an already compiled list. */
export function compileSpecs(input: SpecInput): CompiledSpec[] {
  return input.map((item, index) => {
    if (isCompiled(item)) return item.index === index ? item : { ...item, index };
    if (isRule(item)) return compileSpec(item.tuple, index, item.at);
    return compileSpec(item, index);
  });
}

/** Why one spec value rejects one hardware value. */
export type ElementFailure =
  | { kind: 'literal'; expected: string; actual: string }
  | { kind: 'false'; expression: string; actual: string }
  | { kind: 'odd-value'; expression: string; actual: string; error: string }
  | { kind: 'not-a-function'; text: string; actual: string; reason: string }
  | { kind: 'bound'; variable: string; bound: string; actual: string };

export type ElementOutcome = { ok: true; bind?: string } | { ok: false; failure: ElementFailure };

const evalCache = new WeakMap<CallNode, Map<string, EvalResult>>();

/** Evaluations are cached per expression and value: backtracking asks the same questions again. */
function evaluate(expr: CallNode, value: string): EvalResult {
  let cache = evalCache.get(expr);
  if (!cache) {
    cache = new Map();
    evalCache.set(expr, cache);
  }
  let r = cache.get(value);
  if (!r) {
    r = evaluateExpression(expr, value);
    if (cache.size < 10_000) cache.set(value, r);
  }
  return r;
}

function bindCheck(name: string, value: string, bound: ReadonlyMap<string, string>): ElementOutcome {
  const prior = bound.get(name);
  if (prior !== undefined && prior !== value) {
    return { ok: false, failure: { kind: 'bound', variable: name, bound: prior, actual: value } };
  }
  return { ok: true, bind: name };
}

/**
 * eDeploy's per-position test (pass 2 of `match_spec`) for one value. `bound` holds the
 * variables bound so far; a variable already bound must see the same value again.
 */
export function checkElement(el: ElementRule, value: string, bound: ReadonlyMap<string, string>): ElementOutcome {
  switch (el.kind) {
    case 'literal':
      return value === el.text ? { ok: true } : { ok: false, failure: { kind: 'literal', expected: el.text, actual: value } };
    case 'variable':
      return bindCheck(el.name, value, bound);
    case 'function': {
      const r = evaluate(el.expr, value);
      if (r.ok && isTruthy(r.value)) return { ok: true };
      const expression = formatExpression(el.expr);
      return { ok: false, failure: r.ok ? { kind: 'false', expression, actual: value } : { kind: 'odd-value', expression, actual: value, error: r.error } };
    }
    case 'bad-function':
      return { ok: false, failure: { kind: 'not-a-function', text: el.text, actual: value, reason: el.reason } };
    case 'var-function': {
      const r = evaluate(el.expr, value);
      if (r.ok && isTruthy(r.value)) return bindCheck(el.name, value, bound);
      // eDeploy then falls through to comparing the whole spec text with the value.
      if (value === el.text) return { ok: true };
      const expression = formatExpression(el.expr);
      return { ok: false, failure: r.ok ? { kind: 'false', expression, actual: value } : { kind: 'odd-value', expression, actual: value, error: r.error } };
    }
    case 'var-bad-function':
      if (value === el.text) return { ok: true };
      return { ok: false, failure: { kind: 'not-a-function', text: el.text, actual: value, reason: el.reason } };
    case 'var-literal':
      if (value === el.literal) return bindCheck(el.name, value, bound);
      if (value === el.text) return { ok: true };
      return { ok: false, failure: { kind: 'literal', expected: el.literal, actual: value } };
  }
}

/** One sentence for a failure, for people. */
export function describeFailure(f: ElementFailure): string {
  switch (f.kind) {
    case 'literal':
      return `'${f.actual}' is not '${f.expected}'`;
    case 'false':
      return `${f.expression} is false for '${f.actual}'`;
    case 'odd-value':
      return `${f.expression} cannot be applied to '${f.actual}': ${f.error}`;
    case 'not-a-function':
      return `${f.reason} (it can only match a hardware line identical to the whole spec line)`;
    case 'bound':
      return `$${f.variable} is already bound to '${f.bound}', not '${f.actual}'`;
  }
}
