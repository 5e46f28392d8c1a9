/**
 * `regexp()` in a spec is Python's `re.search(pattern, value)`. JavaScript's RegExp looks
 * alike but differs in ways that change results on real values, so patterns are translated
 * rather than passed through:
 * - `\d`, `\w`, `\s`, `\b` are Unicode-aware in Python (`\w` matches `é`, `\d` matches `٣`);
 *   JavaScript's are ASCII-only.
 * - Python's `$` also matches before a final newline; `.` excludes only `\n` (JavaScript's
 *   also excludes `\r`, U+2028 and U+2029).
 * - Python spells named groups `(?P<name>...)` and `(?P=name)`, has `\A`, `\Z`, leading
 *   inline flags `(?imsx)`, `{,n}` repeats, and treats a `{` that starts no repeat as a
 *   literal; unknown escapes of letters are errors.
 * Constructs JavaScript cannot express (scoped flags, atomic groups, possessive repeats,
 * conditionals, `\N{...}`) are reported as unsupported: the spec line then does not match,
 * and the reason is available to explain, as for any other pattern Python would reject.
 */

export type CompiledPattern = { ok: true; regex: RegExp } | { ok: false; error: string };

interface Flags {
  ignoreCase: boolean;
  multiline: boolean;
  dotAll: boolean;
  verbose: boolean;
  ascii: boolean;
}

const PY_SPACE_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

class Unsupported extends Error {}

function hexEscape(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

/** A literal character in the output, escaped unless it is plainly alphanumeric. */
function literal(cp: number): string {
  const ch = String.fromCodePoint(cp);
  return /[A-Za-z0-9_]/.test(ch) ? ch : hexEscape(cp);
}

function classSets(flags: Flags): Record<string, string> {
  const word = flags.ascii ? 'A-Za-z0-9_' : '\\p{L}\\p{N}_';
  const digit = flags.ascii ? '0-9' : '\\p{Nd}';
  const space = flags.ascii ? ' \\t\\n\\r\\f\\v' : PY_SPACE_CLASS;
  return {
    d: digit,
    D: `[^${digit}]`,
    w: word,
    W: `[^${word}]`,
    s: space,
    S: `[^${space}]`,
  };
}

class Translator {
  private i = 0;
  private out = '';
  private readonly flags: Flags = { ignoreCase: false, multiline: false, dotAll: false, verbose: false, ascii: false };

  constructor(private readonly p: string) {}

  private cp(at = this.i): number | undefined {
    return this.p.codePointAt(at);
  }

  private fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.i}`);
  }

  translate(): { source: string; flags: string } {
    this.leadingFlags();
    while (this.i < this.p.length) this.atom();
    return { source: this.out, flags: `v${this.flags.ignoreCase ? 'i' : ''}` };
  }

  /** Python only accepts global flags at the very start: `(?i)`, `(?x)`, ... */
  private leadingFlags(): void {
    for (;;) {
      const m = /^\(\?([aiLmsux]+)\)/.exec(this.p.slice(this.i));
      if (!m) return;
      for (const f of m[1]!) {
        if (f === 'i') this.flags.ignoreCase = true;
        else if (f === 'm') this.flags.multiline = true;
        else if (f === 's') this.flags.dotAll = true;
        else if (f === 'x') this.flags.verbose = true;
        else if (f === 'a') this.flags.ascii = true;
        else if (f === 'L') this.fail('the L flag only applies to bytes patterns');
      }
      this.i += m[0].length;
    }
  }

  private atom(): void {
    const ch = this.p[this.i]!;
    if (this.flags.verbose) {
      if (/\s/.test(ch)) {
        this.i++;
        return;
      }
      if (ch === '#') {
        while (this.i < this.p.length && this.p[this.i] !== '\n') this.i++;
        return;
      }
    }
    switch (ch) {
      case '\\':
        this.out += this.escape();
        return;
      case '[':
        this.out += this.characterClass();
        return;
      case '(':
        this.group();
        return;
      case ')':
      case '|':
        this.out += ch;
        this.i++;
        return;
      case '.':
        this.out += this.flags.dotAll ? '[\\s\\S]' : '[^\\n]';
        this.i++;
        return;
      case '^':
        this.out += this.flags.multiline ? '(?<![^\\n])' : '(?<![\\s\\S])';
        this.i++;
        return;
      case '$':
        this.out += this.flags.multiline ? '(?=\\n|(?![\\s\\S]))' : '(?=\\n?(?![\\s\\S]))';
        this.i++;
        return;
      case '*':
      case '+':
      case '?':
        this.out += ch;
        this.i++;
        this.repeatSuffix();
        return;
      case '{': {
        const m = /^\{([0-9]*)(?:(,)([0-9]*))?\}/.exec(this.p.slice(this.i));
        if (!m || (m[1] === '' && m[2] === undefined)) {
          this.out += literal(0x7b);
          this.i++;
          return;
        }
        const lo = m[1] === '' ? '0' : m[1]!;
        this.out += m[2] === undefined ? `{${lo}}` : `{${lo},${m[3]!}}`;
        this.i += m[0].length;
        this.repeatSuffix();
        return;
      }
      default: {
        const cp = this.cp()!;
        this.out += literal(cp);
        this.i += cp > 0xffff ? 2 : 1;
      }
    }
  }

  private repeatSuffix(): void {
    if (this.p[this.i] === '?') {
      this.out += '?';
      this.i++;
    } else if (this.p[this.i] === '+') {
      throw new Unsupported('possessive repeats are not supported');
    }
  }

  private group(): void {
    const rest = this.p.slice(this.i);
    let m: RegExpExecArray | null;
    if (!rest.startsWith('(?')) {
      this.out += '(';
      this.i++;
    } else if (rest.startsWith('(?:') || rest.startsWith('(?=') || rest.startsWith('(?!') || rest.startsWith('(?<=') || rest.startsWith('(?<!')) {
      const head = /^\(\?(?::|=|!|<=|<!)/.exec(rest)![0];
      this.out += head;
      this.i += head.length;
    } else if ((m = /^\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest))) {
      this.out += `(?<${m[1]}>`;
      this.i += m[0].length;
    } else if ((m = /^\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest))) {
      this.out += `\\k<${m[1]}>`;
      this.i += m[0].length;
    } else if (rest.startsWith('(?#')) {
      const end = this.p.indexOf(')', this.i);
      if (end < 0) this.fail('missing ), unterminated comment');
      this.i = end + 1;
    } else if (/^\(\?[aiLmsux-]+:/.test(rest)) {
      throw new Unsupported('scoped inline flags (?flags:...) are not supported');
    } else if (/^\(\?[aiLmsux]+\)/.test(rest)) {
      this.fail('global flags not at the start of the expression');
    } else if (rest.startsWith('(?>')) {
      throw new Unsupported('atomic groups are not supported');
    } else if (rest.startsWith('(?(')) {
      throw new Unsupported('conditional groups are not supported');
    } else {
      this.fail(`unknown extension ${rest.slice(0, 3)}`);
    }
  }

  /** An escape outside a character class. */
  private escape(): string {
    const c = this.p[this.i + 1];
    if (c === undefined) this.fail('bad escape (end of pattern)');
    const sets = classSets(this.flags);
    this.i += 2;
    switch (c) {
      case 'A':
        return '(?<![\\s\\S])';
      case 'Z':
        return '(?![\\s\\S])';
      case 'b':
      case 'B': {
        if (this.flags.ascii) return `\\${c}`;
        const w = `[${sets.w}]`;
        return c === 'b' ? `(?:(?<=${w})(?!${w})|(?<!${w})(?=${w}))` : `(?:(?<=${w})(?=${w})|(?<!${w})(?!${w}))`;
      }
      case 'd':
      case 'w':
      case 's':
        return `[${sets[c]}]`;
      case 'D':
      case 'W':
      case 'S':
        return sets[c]!;
    }
    if (/[0-9]/.test(c)) return this.numericEscape(c);
    return literal(this.simpleEscape(c));
  }

  /** `\0`, `\012` (octal) or `\1`..`\99` (a backreference), by Python's rules. */
  private numericEscape(first: string): string {
    if (first === '0') {
      let digits = '';
      while (digits.length < 2 && /[0-7]/.test(this.p[this.i] ?? '')) digits += this.p[this.i++];
      return literal(parseInt(`0${digits}`, 8));
    }
    let escape = first;
    if (/[0-9]/.test(this.p[this.i] ?? '')) {
      escape += this.p[this.i++];
      if (/[0-7]/.test(escape[0]!) && /[0-7]/.test(escape[1]!) && /[0-7]/.test(this.p[this.i] ?? '')) {
        escape += this.p[this.i++];
        const value = parseInt(escape, 8);
        if (value > 0o377) this.fail(`octal escape value \\${escape} outside of range 0-0o377`);
        return literal(value);
      }
    }
    // The group wrapper keeps a following digit from extending the reference.
    return `(?:\\${Number(escape)})`;
  }

  /** Escapes that stand for one character, inside or outside a class; returns the code point. */
  private simpleEscape(c: string): number {
    switch (c) {
      case 'a':
        return 0x07;
      case 'f':
        return 0x0c;
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case 'v':
        return 0x0b;
      case 'x':
      case 'u':
      case 'U': {
        const len = c === 'x' ? 2 : c === 'u' ? 4 : 8;
        const hex = this.p.slice(this.i, this.i + len);
        if (hex.length < len || !/^[0-9a-fA-F]+$/.test(hex)) this.fail(`incomplete escape \\${c}${hex}`);
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff) this.fail(`bad escape \\${c}${hex}`);
        this.i += len;
        return cp;
      }
      case 'N':
        throw new Unsupported('\\N{...} escapes are not supported');
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`bad escape \\${c}`);
    const cp = c.codePointAt(0)!;
    if (cp > 0xffff) this.i++;
    return cp;
  }

  private characterClass(): string {
    const sets = classSets(this.flags);
    this.i++;
    let negate = false;
    if (this.p[this.i] === '^') {
      negate = true;
      this.i++;
    }
    let body = '';
    let first = true;
    for (;;) {
      const ch = this.p[this.i];
      if (ch === undefined) this.fail('unterminated character set');
      if (ch === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      const start = this.classItem(sets);
      if (this.p[this.i] === '-' && this.p[this.i + 1] !== ']' && this.p[this.i + 1] !== undefined) {
        this.i++;
        const end = this.classItem(sets);
        if (typeof start !== 'number' || typeof end !== 'number') this.fail('bad character range');
        if (end < start) this.fail('bad character range');
        body += `${hexEscape(start)}-${hexEscape(end)}`;
      } else {
        body += typeof start === 'number' ? hexEscape(start) : start;
      }
    }
    return `[${negate ? '^' : ''}${body}]`;
  }

  /** One class member: a code point, or the text of a set such as `\d`. */
  private classItem(sets: Record<string, string>): number | string {
    const ch = this.p[this.i]!;
    if (ch !== '\\') {
      const cp = this.cp()!;
      this.i += cp > 0xffff ? 2 : 1;
      return cp;
    }
    const c = this.p[this.i + 1];
    if (c === undefined) this.fail('bad escape (end of pattern)');
    this.i += 2;
    if (c in sets) return sets[c]!;
    // In a class \b is a backspace and digits are always octal.
    if (c === 'b') return 0x08;
    if (/[0-7]/.test(c)) {
      let digits = c;
      while (digits.length < 3 && /[0-7]/.test(this.p[this.i] ?? '')) digits += this.p[this.i++];
      const value = parseInt(digits, 8);
      if (value > 0o377) this.fail(`octal escape value \\${digits} outside of range 0-0o377`);
      return value;
    }
    return this.simpleEscape(c);
  }
}

const cache = new Map<string, CompiledPattern>();
const CACHE_LIMIT = 1000;

/** Compiles a Python regular expression for `search` semantics (unanchored), or says why not. */
export function compilePythonRegex(pattern: string): CompiledPattern {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let result: CompiledPattern;
  try {
    const { source, flags } = new Translator(pattern).translate();
    result = { ok: true, regex: new RegExp(source, flags) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    result = { ok: false, error: e instanceof Unsupported ? message : `invalid regular expression: ${message.replace(/^Invalid regular expression: /, '')}` };
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(pattern, result);
  return result;
}

/** `re.search(pattern, value) is not None`, or the reason the pattern cannot be used. */
export function pythonSearch(pattern: string, value: string): { ok: true; found: boolean } | { ok: false; error: string } {
  const compiled = compilePythonRegex(pattern);
  if (!compiled.ok) return compiled;
  return { ok: true, found: compiled.regex.test(value) };
}
