import { describeNode, type LiteralNode } from './literal-ast.js';
import { formatPyFloat } from './python-numbers.js';
import { SourceError } from './source-error.js';

/**
 * Python data as Plinth holds it: CMDB entries, `state` entries and models are made of
 * these values. Strings, numbers, booleans and None map to their JavaScript counterparts,
 * lists to arrays and dicts to plain objects; tuples get a class of their own because
 * eDeploy tells them apart (a `state` entry is a tuple, and is written back as one).
 */
export type PyScalar = string | number | boolean | null;
export type PyValue = PyScalar | PyValue[] | PyTuple | PyDict;
export interface PyDict {
  [key: string]: PyValue;
}

export class PyTuple {
  readonly items: readonly PyValue[];

  constructor(items: readonly PyValue[]) {
    this.items = Object.freeze([...items]);
  }

  /** JSON has no tuples: they are written as arrays. */
  toJSON(): readonly PyValue[] {
    return this.items;
  }
}

export function isPyDict(v: unknown): v is PyDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyTuple);
}

/**
 * Sets an own property even for keys such as `__proto__`, which plain assignment would
 * turn into a prototype change. Keys come from files Plinth did not write.
 */
export function setKey(target: PyDict, key: string, value: PyValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function dictFromEntries(entries: Iterable<readonly [string, PyValue]>): PyDict {
  const out: PyDict = {};
  for (const [k, v] of entries) setKey(out, k, v);
  return out;
}

export function hasKey(d: PyDict, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(d, key);
}

/** A deep copy, so entries produced from one model never share mutable parts. */
export function cloneValue(v: PyValue): PyValue {
  if (Array.isArray(v)) return v.map(cloneValue);
  if (v instanceof PyTuple) return new PyTuple(v.items.map(cloneValue));
  if (isPyDict(v)) return dictFromEntries(Object.entries(v).map(([k, x]) => [k, cloneValue(x)] as const));
  return v;
}

function asNumber(v: PyValue): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

/** Python's `==` over these values: `1 == 1.0 == True`, `'1' != 1`, `(1,) != [1]`. */
export function pyEquals(a: PyValue, b: PyValue): boolean {
  const na = asNumber(a);
  const nb = asNumber(b);
  if (na !== null || nb !== null) return na !== null && nb !== null && na === nb;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a === null || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEquals(x, b[i]!));
  }
  if (a instanceof PyTuple || b instanceof PyTuple) {
    return (
      a instanceof PyTuple &&
      b instanceof PyTuple &&
      a.items.length === b.items.length &&
      a.items.every((x, i) => pyEquals(x, b.items[i]!))
    );
  }
  if (!isPyDict(a) || !isPyDict(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => hasKey(b, k) && pyEquals(a[k]!, b[k]!));
}

/** Python's `str()` of a scalar, the form hardware values are normalised to. */
export function pyScalarText(v: PyScalar): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? String(BigInt(v)) : formatPyFloat(v);
}

/**
 * The string form of a scalar node (decision 8: hardware values are compared as strings).
 * Works from the syntax tree so that integers keep every digit. Returns null for containers.
 */
export function nodeScalarText(node: LiteralNode): string | null {
  switch (node.kind) {
    case 'str':
      return node.value;
    case 'int':
      return node.value.toString();
    case 'float':
      return formatPyFloat(node.value);
    case 'bool':
      return node.value ? 'True' : 'False';
    case 'none':
      return 'None';
    default:
      return null;
  }
}

/**
 * Converts a syntax tree to values. Dict keys must be strings (every eDeploy file uses
 * string keys, and JavaScript objects could not keep `1` and `'1'` apart); calls are not
 * values and must be handled by the caller before getting here.
 */
export function literalToValue(node: LiteralNode, file?: string): PyValue {
  const fail = (reason: string, at: LiteralNode): never => {
    throw new SourceError(reason, { file, ...at.pos });
  };
  switch (node.kind) {
    case 'str':
      return node.value;
    case 'int': {
      const n = Number(node.value);
      if (!Number.isSafeInteger(n)) fail(`integer ${node.value} is too large (limit ±${Number.MAX_SAFE_INTEGER})`, node);
      return n;
    }
    case 'float':
      return node.value;
    case 'bool':
      return node.value;
    case 'none':
      return null;
    case 'list':
      return node.items.map((item) => literalToValue(item, file));
    case 'tuple':
      return new PyTuple(node.items.map((item) => literalToValue(item, file)));
    case 'dict': {
      const out: PyDict = {};
      for (const { key, value } of node.entries) {
        if (key.kind !== 'str') fail(`dict keys must be strings, found ${describeNode(key)}`, key);
        setKey(out, (key as { value: string }).value, literalToValue(value, file));
      }
      return out;
    }
    case 'call':
      return fail(`${node.name}() is not allowed here`, node);
  }
}

/** Converts values parsed by other means (JSON.parse, a database row) into Python values. */
export function plainToValue(v: unknown): PyValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plainToValue);
  if (v instanceof PyTuple) return v;
  if (typeof v === 'object') return dictFromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plainToValue(x)] as const));
  throw new TypeError(`cannot represent a ${typeof v} as a Python value`);
}
