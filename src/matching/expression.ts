import { networkContains, parseAddress, parseNetwork } from './ip-network.js';
import { parsePyFloat, pyStripChars } from './python-numbers.js';
import { pythonSearch } from './python-regex.js';

/**
 * Function expressions in spec values (`gt(4)`, `network(10.0.0.0/8)`,
 * `and(range(1, 5), not(in(3)))`). eDeploy split these with one regular expression, which
 * kept a space before a comma inside the argument and tore nested calls with several
 * arguments apart; here they are parsed (decision 3): whitespace around commas is ignored,
 * nested calls take any number of arguments, and only the documented functions exist.
 * Evaluating never throws: a value the function cannot handle (`gt(4)` against `'1000GB'`,
 * `network()` against a name) gives an error result, and the spec line simply does not match
 * that hardware line (decision 2).
 */

export const SPEC_FUNCTIONS = ['gt', 'ge', 'lt', 'le', 'range', 'in', 'network', 'regexp', 'not', 'and', 'or'] as const;
export type SpecFunction = (typeof SPEC_FUNCTIONS)[number];

export function isSpecFunction(name: string): name is SpecFunction {
  return (SPEC_FUNCTIONS as readonly string[]).includes(name);
}

export type ExprNode = CallNode | { type: 'text'; value: string };
export interface CallNode {
  type: 'call';
  name: SpecFunction;
  args: ExprNode[];
}

export type ParsedExpression = { ok: true; expr: CallNode } | { ok: false; error: string };
export type EvalValue = boolean | string;
export type EvalResult = { ok: true; value: EvalValue } | { ok: false; error: string };

/**
 * eDeploy's test for "this spec value is a function call": it ends with `)` and has the
 * shape `name(arg...)`. Values with that shape whose name is not a known function are
 * unknown functions (they never match in the per-position pass); values without it, such as
 * `'edeploy_test_vm ()'`, are literals.
 */
const CALL_SHAPE = /^([^(]+)\(\s*([^,]+)(?:\s*,\s*([^\n]+))?\)$/;

/** The (trimmed) function name when `text` has eDeploy's call shape, else null. */
export function callShapeName(text: string): string | null {
  if (!text.endsWith(')')) return null;
  const m = CALL_SHAPE.exec(text);
  return m ? m[1]!.trim() : null;
}

const ARITY: Record<SpecFunction, [number, number]> = {
  gt: [1, 1],
  ge: [1, 1],
  lt: [1, 1],
  le: [1, 1],
  range: [2, 2],
  in: [1, Infinity],
  network: [1, 1],
  regexp: [1, 1],
  not: [1, 1],
  and: [2, Infinity],
  or: [2, Infinity],
};

class ExprSyntaxError extends Error {}

class ExprParser {
  private i = 0;

  constructor(private readonly s: string) {}

  private fail(message: string): never {
    throw new ExprSyntaxError(`${message} at column ${this.i + 1}`);
  }

  private skipSpace(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  parse(): CallNode {
    this.skipSpace();
    const call = this.call();
    this.skipSpace();
    if (this.i < this.s.length) this.fail(`unexpected '${this.s[this.i]}' after the closing parenthesis`);
    return call;
  }

  /** A whitelisted name directly followed (spaces allowed) by `(`. */
  private peekCallName(): SpecFunction | null {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(this.s.slice(this.i));
    return m && isSpecFunction(m[1]!) ? m[1] : null;
  }

  private call(): CallNode {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(this.s.slice(this.i));
    if (!m) this.fail('expected a function call');
    const name = m[1]!;
    if (!isSpecFunction(name)) this.fail(`unknown function '${name}'`);
    this.i += m[0].length;
    const args: ExprNode[] = [];
    this.skipSpace();
    if (this.s[this.i] === ')') {
      this.i++;
    } else {
      for (;;) {
        args.push(this.argument());
        this.skipSpace();
        const ch = this.s[this.i];
        if (ch === ',') {
          this.i++;
          continue;
        }
        if (ch === ')') {
          this.i++;
          break;
        }
        this.fail(ch === undefined ? `missing ')' to close ${name}(` : `expected ',' or ')', found '${ch}'`);
      }
    }
    const [min, max] = ARITY[name];
    if (args.length < min || args.length > max) {
      const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      this.fail(`${name}() takes ${want} argument${min === 1 && max === 1 ? '' : 's'}, got ${args.length}`);
    }
    return { type: 'call', name: name as SpecFunction, args };
  }

  private argument(): ExprNode {
    this.skipSpace();
    const ch = this.s[this.i];
    if (ch === "'" || ch === '"') {
      const close = this.s.indexOf(ch, this.i + 1);
      if (close > 0) {
        const after = /^\s*([,)])/.exec(this.s.slice(close + 1));
        if (after) {
          const value = this.s.slice(this.i + 1, close);
          this.i = close + 1;
          return { type: 'text', value };
        }
      }
    }
    if (this.peekCallName()) return this.call();
    return { type: 'text', value: pyStripChars(this.rawText().trim(), '\'"') };
  }

  /**
   * An unquoted argument: everything up to a comma or closing parenthesis that is not
   * nested, so regular expressions keep their groups, classes and `{m,n}` repeats. When the
   * nesting never closes (`regexp(a(b)`), the argument runs to the last `)`, which is how
   * eDeploy read it.
   */
  private rawText(): string {
    const start = this.i;
    let depth = 0;
    let inClass = false;
    while (this.i < this.s.length) {
      const ch = this.s[this.i]!;
      if (ch === '\\') {
        this.i += 2;
        continue;
      }
      if (inClass) {
        if (ch === ']') inClass = false;
        this.i++;
        continue;
      }
      if (ch === '[') inClass = true;
      else if (ch === '{') {
        const repeat = /^\{[0-9]*(?:,[0-9]*)?\}/.exec(this.s.slice(this.i));
        if (repeat) {
          this.i += repeat[0].length;
          continue;
        }
      } else if (ch === '(') depth++;
      else if (ch === ')') {
        if (depth === 0) return this.s.slice(start, this.i);
        depth--;
      } else if (ch === ',' && depth === 0) return this.s.slice(start, this.i);
      this.i++;
    }
    const last = this.s.lastIndexOf(')');
    this.i = last > start ? last : this.s.length;
    return this.s.slice(start, this.i);
  }
}

const parsedCache = new Map<string, ParsedExpression>();

/** Parses a function expression such as `and(gt(20), lt(50))`. */
export function parseExpression(text: string): ParsedExpression {
  const hit = parsedCache.get(text);
  if (hit) return hit;
  let result: ParsedExpression;
  try {
    result = { ok: true, expr: new ExprParser(text).parse() };
  } catch (e) {
    if (!(e instanceof ExprSyntaxError)) throw e;
    result = { ok: false, error: e.message };
  }
  if (parsedCache.size > 5000) parsedCache.clear();
  parsedCache.set(text, result);
  return result;
}

/** Python truthiness of a function result: a non-empty string is true. */
export function isTruthy(v: EvalValue): boolean {
  return typeof v === 'boolean' ? v : v.length > 0;
}

/** Python's float() of an argument; a nested call's boolean counts as 1 or 0, as in Python. */
function toFloat(v: EvalValue): number | string {
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = parsePyFloat(v);
  return n === null ? `'${v}' is not a number` : n;
}

/** The expression as text, normalised (used in explanations). */
export function formatExpression(expr: ExprNode): string {
  if (expr.type === 'text') return expr.value;
  return `${expr.name}(${expr.args.map(formatExpression).join(', ')})`;
}

/**
 * Evaluates a call against a hardware value. eDeploy stripped quote characters from the
 * value before calling the function, and so does this; the value is data and is never
 * itself parsed as an expression.
 */
export function evaluateExpression(expr: CallNode, hardwareValue: string): EvalResult {
  return evalCall(expr, pyStripChars(hardwareValue, '\'"'));
}

function evalCall(node: CallNode, value: string): EvalResult {
  const args: EvalValue[] = [];
  // Arguments are evaluated first, all of them, as eDeploy did: an error anywhere means the
  // line does not match.
  for (const arg of node.args) {
    if (arg.type === 'text') {
      args.push(arg.value);
      continue;
    }
    const r = evalCall(arg, value);
    if (!r.ok) return r;
    args.push(r.value);
  }
  const a0 = args[0]!;
  switch (node.name) {
    case 'gt':
    case 'ge':
    case 'lt':
    case 'le': {
      const x = toFloat(value);
      if (typeof x === 'string') return { ok: false, error: `${x} (${node.name}() compares numbers)` };
      const y = toFloat(a0);
      if (typeof y === 'string') return { ok: false, error: `${node.name}(): ${y}` };
      const r = node.name === 'gt' ? x > y : node.name === 'ge' ? x >= y : node.name === 'lt' ? x < y : x <= y;
      return { ok: true, value: r };
    }
    case 'range': {
      const lo = toFloat(a0);
      const x = toFloat(value);
      const hi = toFloat(args[1]!);
      for (const v of [lo, hi]) if (typeof v === 'string') return { ok: false, error: `range(): ${v}` };
      if (typeof x === 'string') return { ok: false, error: `${x} (range() compares numbers)` };
      return { ok: true, value: (lo as number) <= x && x <= (hi as number) };
    }
    case 'in':
      return { ok: true, value: args.some((a) => a === value) };
    case 'network': {
      if (typeof a0 !== 'string') return { ok: false, error: 'network() needs a network, not a condition' };
      const net = parseNetwork(a0);
      if (!net.ok) return { ok: false, error: `network(): ${net.error}` };
      const addr = parseAddress(value);
      if (!addr.ok) return { ok: false, error: addr.error };
      return { ok: true, value: networkContains(net.value, addr.value) };
    }
    case 'regexp': {
      if (typeof a0 !== 'string') return { ok: false, error: 'regexp() needs a pattern, not a condition' };
      const r = pythonSearch(a0, value);
      if (!r.ok) return { ok: false, error: `regexp(${a0}): ${r.error}` };
      return { ok: true, value: r.found };
    }
    case 'not':
      return { ok: true, value: !isTruthy(a0) };
    case 'and': {
      // Python's `x and y`: the first falsy operand, else the last.
      const found = args.find((a) => !isTruthy(a));
      return { ok: true, value: found ?? args[args.length - 1]! };
    }
    case 'or': {
      const found = args.find(isTruthy);
      return { ok: true, value: found ?? args[args.length - 1]! };
    }
  }
}
