import { formatPyFloat } from './python-numbers.js';
import { isPyDict, PyTuple, type PyValue } from './python-values.js';

/**
 * Writes values as Python-literal text laid out the way Python's `pprint.pprint` does
 * (width 80, dict keys sorted, one item per line once a container does not fit), so that
 * `state` and `.cmdb` files rewritten by Plinth read back in eDeploy and look like the files
 * eDeploy itself writes. One difference: pprint splits very long strings into adjacent
 * literals; they are kept whole here, which Python reads the same.
 */

const WIDTH = 80;

const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Python's `repr(str)`. */
export function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

function reprNumber(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 2 ** 63 ? String(BigInt(n)) : formatPyFloat(n);
}

/** Orders strings by code point, as Python sorts them (JavaScript compares UTF-16 units). */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

function sortedEntries(d: Record<string, PyValue>): [string, PyValue][] {
  return Object.entries(d).sort(([a], [b]) => compareCodePoints(a, b));
}

/** Python's `repr()` on one line (with dict keys sorted, as pprint shows them). */
export function reprPython(v: PyValue): string {
  if (typeof v === 'string') return reprString(v);
  if (typeof v === 'number') return reprNumber(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null) return 'None';
  if (Array.isArray(v)) return `[${v.map(reprPython).join(', ')}]`;
  if (v instanceof PyTuple) {
    if (v.items.length === 1) return `(${reprPython(v.items[0]!)},)`;
    return `(${v.items.map(reprPython).join(', ')})`;
  }
  return `{${sortedEntries(v)
    .map(([k, x]) => `${reprString(k)}: ${reprPython(x)}`)
    .join(', ')}}`;
}

function format(v: PyValue, out: string[], indent: number, allowance: number): void {
  const rep = reprPython(v);
  if (codePointLength(rep) > WIDTH - indent - allowance) {
    if (Array.isArray(v)) {
      out.push('[');
      formatItems(v, out, indent, allowance + 1);
      out.push(']');
      return;
    }
    if (v instanceof PyTuple) {
      const end = v.items.length === 1 ? ',)' : ')';
      out.push('(');
      formatItems(v.items, out, indent, allowance + end.length);
      out.push(end);
      return;
    }
    if (isPyDict(v)) {
      out.push('{');
      formatDictItems(sortedEntries(v), out, indent, allowance + 1);
      out.push('}');
      return;
    }
  }
  out.push(rep);
}

function formatItems(items: readonly PyValue[], out: string[], indent: number, allowance: number): void {
  const inner = indent + 1;
  items.forEach((item, i) => {
    if (i > 0) out.push(`,\n${' '.repeat(inner)}`);
    format(item, out, inner, i === items.length - 1 ? allowance : 1);
  });
}

function formatDictItems(entries: [string, PyValue][], out: string[], indent: number, allowance: number): void {
  const inner = indent + 1;
  entries.forEach(([key, value], i) => {
    const keyRep = reprString(key);
    out.push(`${keyRep}: `);
    format(value, out, inner + codePointLength(keyRep) + 2, i === entries.length - 1 ? allowance : 1);
    if (i < entries.length - 1) out.push(`,\n${' '.repeat(inner)}`);
  });
}

/** The text `pprint.pprint(value)` writes, final newline included. */
export function formatPython(value: PyValue): string {
  const out: string[] = [];
  format(value, out, 0, 0);
  return `${out.join('')}\n`;
}
