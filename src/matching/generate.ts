import { validation } from '../core/errors.js';
import { parsePyInt } from './python-numbers.js';
import { cloneValue, isPyDict, PyTuple, setKey, type PyDict, type PyValue } from './python-values.js';

/**
 * eDeploy's `generate()`: a CMDB model (one dict whose values may be ranges or lists)
 * expanded into the list of entries it stands for.
 * - `'host03-07'` gives host03..host07: zero padding comes from the start literal alone
 *   (`08-11` → 08..11, `9-11` → 9,10,11), a range counts down when start > stop, `:`
 *   joins ranges (`1-3:7-9`), and only the first range in a string expands (`r1-2-h10-11`
 *   → r1-h10-11, r2-h10-11).
 * - `'10.0.1-2.2-254'`, an address with ranges in its octets, is the cartesian product of
 *   the octets, the first varying slowest (506 addresses).
 * - Lists enumerate, and so do tuples (decision 1, as the eDeploy README documents);
 *   `{'$const': value}` is copied unchanged into every entry.
 * - A nested dict is expanded in step with the rest (decision 5; eDeploy emptied it).
 * - Everything else is a constant. Entries stop at the shortest range or list; a model with
 *   none yields exactly one entry (decision 6; eDeploy produced 16 million copies).
 */

export interface GenerateOptions {
  /** Refuse models that expand to more entries than this. */
  maxEntries?: number;
}

export const DEFAULT_MAX_ENTRIES = 100_000;

/** The key that marks a value to copy unchanged: `{'$const': [...]}`. */
export const CONST_KEY = '$const';

type Gen =
  | { kind: 'const'; value: PyValue }
  | { kind: 'seq'; iter: Iterator<PyValue> }
  | { kind: 'dict'; fields: [string, Gen][] };

const DONE: unique symbol = Symbol('done');

const RANGE = /^([^\n]*?)([0-9]+-[0-9]+(?::[0-9]+-[0-9]+)*)([^\n]*)(?=\n?$)/;
const IPV4_RANGE = /^[0-9:\-.]+\n?$/;

/** eDeploy's `_generate_range`: `'08-11:20-18'` → 08, 09, 10, 11, 20, 19, 18. */
function* numericRange(text: string): Generator<string> {
  for (const part of text.split(':')) {
    const bounds = part.split('-');
    if (bounds.length !== 2) {
      yield text;
      continue;
    }
    const [startText, stopText] = bounds as [string, string];
    if (startText === '') throw validation('generate', `range '${part}' in '${text}' has no start`);
    const start = parsePyInt(startText);
    const stop = parsePyInt(stopText);
    if (start === null || stop === null) {
      // Not numbers after all (`D7-H.1.0.0`): eDeploy yields the text unchanged.
      yield text;
      continue;
    }
    const width = startText.startsWith('0') ? startText.length : 0;
    const step = start <= stop ? 1n : -1n;
    for (let n = start; step > 0n ? n <= stop : n >= stop; n += step) {
      yield width > 0 ? n.toString().padStart(width, '0') : n.toString();
    }
  }
}

function* ipv4Range(text: string): Generator<string> {
  const [a, b, c, d] = text.split('.') as [string, string, string, string];
  for (const p0 of numericRange(a)) {
    for (const p1 of numericRange(b)) {
      for (const p2 of numericRange(c)) {
        for (const p3 of numericRange(d)) yield `${p0}.${p1}.${p2}.${p3}`;
      }
    }
  }
}

/**
 * The values a string stands for in a model, or null when it is a constant. The iterable
 * is lazy: a huge range next to a short one costs nothing.
 */
export function stringRange(text: string): Iterable<string> | null {
  const m = RANGE.exec(text);
  if (!m) return null;
  if (IPV4_RANGE.test(text) && text.split('.').length === 4) return { [Symbol.iterator]: () => ipv4Range(text) };
  const [, head, range, foot] = m as unknown as [string, string, string, string];
  return {
    *[Symbol.iterator]() {
      for (const n of numericRange(range)) yield head + n + foot;
    },
  };
}

function isConstMarker(v: PyDict): boolean {
  return Object.prototype.hasOwnProperty.call(v, CONST_KEY);
}

function toGen(value: PyValue, path: string): Gen {
  if (typeof value === 'string') {
    const range = stringRange(value);
    return range ? { kind: 'seq', iter: range[Symbol.iterator]() } : { kind: 'const', value };
  }
  if (Array.isArray(value) || value instanceof PyTuple) {
    const items = Array.isArray(value) ? value : value.items;
    return { kind: 'seq', iter: items[Symbol.iterator]() };
  }
  if (isPyDict(value)) {
    if (isConstMarker(value)) {
      if (Object.keys(value).length !== 1) throw validation(path, `'${CONST_KEY}' must be the only key of its object`);
      return { kind: 'const', value: value[CONST_KEY]! };
    }
    return { kind: 'dict', fields: Object.entries(value).map(([k, v]) => [k, toGen(v, `${path}.${k}`)]) };
  }
  return { kind: 'const', value };
}

function hasFinite(g: Gen): boolean {
  if (g.kind === 'seq') return true;
  if (g.kind === 'dict') return g.fields.some(([, f]) => hasFinite(f));
  return false;
}

function step(g: Gen): PyValue | typeof DONE {
  if (g.kind === 'const') return cloneValue(g.value);
  if (g.kind === 'seq') {
    const r = g.iter.next();
    return r.done ? DONE : cloneValue(r.value);
  }
  const entry: PyDict = {};
  let done = false;
  // Every field advances, as eDeploy called next() on each generator of an entry.
  for (const [key, field] of g.fields) {
    const v = step(field);
    if (v === DONE) done = true;
    else setKey(entry, key, v);
  }
  return done ? DONE : entry;
}

/** Expands a CMDB model into its entries, in order. */
export function expandModel(model: PyDict, options: GenerateOptions = {}): PyDict[] {
  if (!isPyDict(model)) throw validation('generate', 'a model must be a dict');
  if (isConstMarker(model)) throw validation('generate', `a model cannot be a '${CONST_KEY}' value`);
  const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const root = toGen(model, 'generate');
  if (!hasFinite(root)) return [step(root) as PyDict];
  const entries: PyDict[] = [];
  for (;;) {
    const entry = step(root);
    if (entry === DONE) return entries;
    if (entries.length >= max) throw validation('generate', `the model expands to more than ${max} entries`);
    entries.push(entry as PyDict);
  }
}
