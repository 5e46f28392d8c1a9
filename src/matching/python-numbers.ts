/**
 * Python's number conversions, reproduced because eDeploy specs and CMDB files were written
 * against them and JavaScript's differ: `float()` accepts surrounding whitespace, `1_000`,
 * `inf`/`nan` and any Unicode decimal digit but rejects `''` and `'0x10'` (where `Number`
 * says 0 and 16); `repr(float)` switches to exponent form at 1e16 and 1e-5 and always shows
 * a fractional part (`1200.0`), where `String(number)` says `1200` and `1e+21`.
 */

/** The characters `str.strip()` and `float()` treat as whitespace (Python's `str.isspace`). */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

export function isPyWhitespace(ch: string): boolean {
  return ch.length > 0 && PY_SPACE.includes(ch);
}

/** `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PY_SPACE.includes(s[start]!)) start++;
  while (end > start && PY_SPACE.includes(s[end - 1]!)) end--;
  return s.slice(start, end);
}

/** `str.strip(chars)`: removes any of `chars` from both ends. */
export function pyStripChars(s: string, chars: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && chars.includes(s[start]!)) start++;
  while (end > start && chars.includes(s[end - 1]!)) end--;
  return s.slice(start, end);
}

const ND = /\p{Nd}/u;

/**
 * Unicode keeps every run of decimal digits contiguous and in order 0..9 (and adjacent runs,
 * like the mathematical digits, are whole runs of ten), so a digit's value is its distance
 * from the start of its run, modulo ten.
 */
function unicodeDigitValue(cp: number): number {
  let start = cp;
  while (start > 0 && ND.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

/** Replaces non-ASCII decimal digits by their ASCII value, as Python's numeric parsers do. */
function asciiDigits(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += cp > 0x7f && ND.test(ch) ? String(unicodeDigitValue(cp)) : ch;
  }
  return out;
}

const DIGITS = '[0-9](?:_?[0-9])*';
const PY_FLOAT_TEXT = new RegExp(`^[+-]?(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`);
const PY_SPECIAL_FLOAT = /^([+-]?)(inf|infinity|nan)$/i;

/** Python's `float(text)`, or null where Python raises ValueError. */
export function parsePyFloat(text: string): number | null {
  const s = asciiDigits(pyStrip(text));
  const special = PY_SPECIAL_FLOAT.exec(s);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
    return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!PY_FLOAT_TEXT.test(s)) return null;
  return Number(s.replaceAll('_', ''));
}

const PY_INT_TEXT = /^[+-]?[0-9](?:_?[0-9])*$/;

/** Python's `int(text)` in base 10, or null where Python raises ValueError. */
export function parsePyInt(text: string): bigint | null {
  const s = asciiDigits(pyStrip(text));
  if (!PY_INT_TEXT.test(s)) return null;
  return BigInt(s.replaceAll('_', ''));
}

/** Python's `repr(float)` (also its `str()`), the form Python writes floats back in. */
export function formatPyFloat(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument gives the shortest digits that round-trip, the same
  // digits Python's repr chooses; only the layout differs.
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(n.toExponential());
  if (!m) return String(n);
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? '');
  const exp = Number(m[4]);
  if (exp >= 16 || exp < -4) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
}
