import type { DictEntryNode, LiteralNode } from './literal-ast.js';
import { SourceError, type SourcePosition } from './source-error.js';

/**
 * A parser for the Python-literal subset eDeploy files are written in (`.specs`, `.cmdb`,
 * `state`, `.hw`): lists, tuples, dicts, strings in every quoting style with escapes and
 * adjacent-literal concatenation, ints, floats, signed numbers, True/False/None, comments,
 * trailing commas, and the call `generate(...)`. eDeploy read these files with `eval`; here
 * nothing is evaluated: any other name, operator or call is a syntax error naming the file,
 * line and column.
 */

export interface ParseOptions {
  /** Used in error messages. */
  file?: string | undefined;
  /** Names accepted as calls; eDeploy files only ever use `generate`. */
  calls?: readonly string[];
}

/** Deeper nesting than this is refused instead of exhausting the stack. */
const MAX_DEPTH = 200;

type TokenType = 'str' | 'num' | 'name' | 'op' | 'eof';

interface Token {
  type: TokenType;
  /** The source text of a number, name or operator. */
  text: string;
  /** The decoded value of a string literal. */
  value: string;
  pos: SourcePosition;
  /** True when a newline outside any bracket separates this token from the previous one. */
  breakBefore: boolean;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const STRING_PREFIX = /^(?:r|u|b|br|rb|ur)$/i;

class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly file: string | undefined,
  ) {
    if (src.startsWith('\ufeff')) this.i = 1;
    this.lineStart = this.i;
  }

  private here(): SourcePosition {
    return { line: this.line, column: this.i - this.lineStart + 1 };
  }

  fail(reason: string, pos: SourcePosition = this.here()): never {
    throw new SourceError(reason, { file: this.file, ...pos });
  }

  private newline(): void {
    this.i++;
    this.line++;
    this.lineStart = this.i;
  }

  next(): Token {
    let breakBefore = false;
    for (;;) {
      const ch = this.src[this.i];
      if (ch === undefined) break;
      if (ch === ' ' || ch === '\t' || ch === '\f') {
        this.i++;
      } else if (ch === '\n') {
        if (this.depth === 0) breakBefore = true;
        this.newline();
      } else if (ch === '#') {
        while (this.i < this.src.length && this.src[this.i] !== '\n') this.i++;
      } else if (ch === '\\' && this.src[this.i + 1] === '\n') {
        this.i++;
        this.newline();
      } else {
        break;
      }
    }
    const pos = this.here();
    const ch = this.src[this.i];
    if (ch === undefined) return { type: 'eof', text: '', value: '', pos, breakBefore };
    if (ch === '"' || ch === "'") return this.string('', pos, breakBefore);
    if (NAME_START.test(ch)) {
      let j = this.i;
      while (j < this.src.length && NAME_CHAR.test(this.src[j]!)) j++;
      const word = this.src.slice(this.i, j);
      const after = this.src[j];
      if ((after === '"' || after === "'") && word.length <= 2) {
        if (!STRING_PREFIX.test(word)) {
          this.fail(/f/i.test(word) ? 'f-strings are not literals and are not allowed' : `invalid string prefix '${word}'`, pos);
        }
        this.i = j;
        return this.string(word.toLowerCase(), pos, breakBefore);
      }
      this.i = j;
      return { type: 'name', text: word, value: '', pos, breakBefore };
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(this.src[this.i + 1] ?? ''))) {
      return this.number(pos, breakBefore);
    }
    if ('([{'.includes(ch)) this.depth++;
    if (')]}'.includes(ch) && this.depth > 0) this.depth--;
    if ('()[]{},:+-='.includes(ch)) {
      this.i++;
      return { type: 'op', text: ch, value: '', pos, breakBefore };
    }
    const shown = /[\x21-\x7e]/.test(ch) ? `'${ch}'` : `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    return this.fail(`unexpected character ${shown}`, pos);
  }

  private string(prefix: string, pos: SourcePosition, breakBefore: boolean): Token {
    const raw = prefix.includes('r');
    const bytes = prefix.includes('b');
    const quote = this.src[this.i]!;
    const triple = this.src.startsWith(quote.repeat(3), this.i);
    this.i += triple ? 3 : 1;
    let out = '';
    for (;;) {
      const ch = this.src[this.i];
      if (ch === undefined) this.fail(triple ? 'unterminated triple-quoted string' : 'unterminated string', pos);
      if (ch === quote && (!triple || this.src.startsWith(quote.repeat(3), this.i))) {
        this.i += triple ? 3 : 1;
        break;
      }
      if (ch === '\n') {
        if (!triple) this.fail('unterminated string (a newline inside a quoted string)', pos);
        out += '\n';
        this.newline();
        continue;
      }
      if (ch !== '\\') {
        out += ch;
        this.i++;
        continue;
      }
      const esc = this.src[this.i + 1];
      if (esc === undefined) this.fail('unterminated string', pos);
      if (raw) {
        // A raw string keeps the backslash; it only stops the next character from ending
        // the literal.
        out += '\\';
        this.i++;
        if (esc === '\n') {
          out += '\n';
          this.newline();
        } else {
          out += esc;
          this.i++;
        }
        continue;
      }
      out += this.escape(esc, bytes);
    }
    return { type: 'str', text: '', value: out, pos, breakBefore };
  }

  /** Decodes the escape starting at the backslash under `this.i`. */
  private escape(esc: string, bytes: boolean): string {
    const escPos = this.here();
    this.i += 2;
    switch (esc) {
      case '\n':
        this.line++;
        this.lineStart = this.i;
        return '';
      case '\\':
      case "'":
      case '"':
        return esc;
      case 'a':
        return '\x07';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'v':
        return '\v';
      case 'x':
        return this.hexEscape(2, escPos, '\\x');
      case 'u':
      case 'U':
        if (bytes) return `\\${esc}`;
        return this.hexEscape(esc === 'u' ? 4 : 8, escPos, `\\${esc}`);
      case 'N':
        if (bytes) return '\\N';
        return this.fail('\\N{...} escapes are not supported', escPos);
      default:
        if (/[0-7]/.test(esc)) {
          let digits = esc;
          while (digits.length < 3 && /[0-7]/.test(this.src[this.i] ?? '')) digits += this.src[this.i++];
          return String.fromCodePoint(parseInt(digits, 8));
        }
        // Python keeps an unknown escape as written, backslash included ('\d' is two
        // characters), which is what regexp() specs rely on.
        return `\\${esc}`;
    }
  }

  private hexEscape(len: number, escPos: SourcePosition, what: string): string {
    const hex = this.src.slice(this.i, this.i + len);
    if (hex.length < len || !/^[0-9a-fA-F]+$/.test(hex)) this.fail(`truncated ${what} escape`, escPos);
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff) this.fail(`${what} escape out of range`, escPos);
    this.i += len;
    return String.fromCodePoint(cp);
  }

  private number(pos: SourcePosition, breakBefore: boolean): Token {
    const start = this.i;
    const radix = /^0[xXoObB]/.test(this.src.slice(this.i, this.i + 2));
    if (radix) {
      this.i += 2;
      while (/[0-9a-zA-Z_]/.test(this.src[this.i] ?? '')) this.i++;
    } else {
      while (/[0-9_]/.test(this.src[this.i] ?? '')) this.i++;
      if (this.src[this.i] === '.') {
        this.i++;
        while (/[0-9_]/.test(this.src[this.i] ?? '')) this.i++;
      }
      if (/[eE]/.test(this.src[this.i] ?? '') && /[0-9+-]/.test(this.src[this.i + 1] ?? '')) {
        this.i += 2;
        while (/[0-9_]/.test(this.src[this.i] ?? '')) this.i++;
      }
      // Python 2 wrote long integers with an L suffix; old eDeploy files may carry them.
      if (/[lL]/.test(this.src[this.i] ?? '')) this.i++;
    }
    if (/[jJ]/.test(this.src[this.i] ?? '')) this.fail('complex numbers are not supported', pos);
    if (NAME_CHAR.test(this.src[this.i] ?? '')) this.fail('invalid number literal', pos);
    return { type: 'num', text: this.src.slice(start, this.i), value: '', pos, breakBefore };
  }
}

const DEC = '[0-9](?:_?[0-9])*';
const INT_LITERAL = /^(?:0(?:_?0)*|[1-9](?:_?[0-9])*)[lL]?$/;
const RADIX_LITERAL: Record<string, RegExp> = {
  x: /^0[xX](?:_?[0-9a-fA-F])+[lL]?$/,
  o: /^0[oO](?:_?[0-7])+[lL]?$/,
  b: /^0[bB](?:_?[01])+[lL]?$/,
};
const FLOAT_LITERAL = new RegExp(`^(?:${DEC}\\.(?:${DEC})?|\\.${DEC}|${DEC})(?:[eE][+-]?${DEC})?$`);

class Parser {
  private tok: Token;
  private readonly calls: readonly string[];

  constructor(
    private readonly lexer: Lexer,
    options: ParseOptions,
  ) {
    this.calls = options.calls ?? ['generate'];
    this.tok = lexer.next();
  }

  private advance(): Token {
    const t = this.tok;
    this.tok = this.lexer.next();
    return t;
  }

  private atEnd(): boolean {
    return this.tok.type === 'eof';
  }

  private isOp(text: string): boolean {
    return this.tok.type === 'op' && this.tok.text === text;
  }

  private describe(t: Token): string {
    switch (t.type) {
      case 'eof':
        return 'the end of the file';
      case 'str':
        return 'a string';
      case 'num':
        return `the number ${t.text}`;
      case 'name':
        return `'${t.text}'`;
      case 'op':
        return `'${t.text}'`;
    }
  }

  private fail(reason: string, pos: SourcePosition = this.tok.pos): never {
    return this.lexer.fail(reason, pos);
  }

  parseDocument(): LiteralNode {
    if (this.tok.type === 'eof') this.fail('empty file: expected a Python literal');
    const first = this.expression(0);
    let root = first;
    // eval() accepts a bare tuple at the top level: `'a', 'b'`.
    if (this.isOp(',') && !this.tok.breakBefore) {
      const items = [first];
      while (this.isOp(',') && !this.tok.breakBefore) {
        this.advance();
        if (this.atEnd() || this.tok.breakBefore) break;
        items.push(this.expression(0));
      }
      root = { kind: 'tuple', items, pos: first.pos };
    }
    if (!this.atEnd()) {
      this.fail(`expected the end of the file after the literal, found ${this.describe(this.tok)}`);
    }
    return root;
  }

  private expression(depth: number): LiteralNode {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const t = this.tok;
    if (t.type === 'op') {
      switch (t.text) {
        case '[':
          return this.list(depth);
        case '(':
          return this.parenthesised(depth);
        case '{':
          return this.dict(depth);
        case '-':
        case '+':
          return this.signed();
        default:
          return this.fail(`expected a value, found ${this.describe(t)}`);
      }
    }
    if (t.type === 'str') return this.strings();
    if (t.type === 'num') {
      // Checked before reading on, so that errors come in source order.
      const node = this.numberNode(t.text, t.pos, false);
      this.advance();
      return node;
    }
    if (t.type === 'name') return this.name(depth);
    return this.fail(`expected a value, found ${this.describe(t)}`);
  }

  /** Adjacent string literals form one string, as in Python source. */
  private strings(): LiteralNode {
    const first = this.advance();
    let value = first.value;
    while (this.tok.type === 'str' && !this.tok.breakBefore) value += this.advance().value;
    return { kind: 'str', value, pos: first.pos };
  }

  private signed(): LiteralNode {
    const pos = this.tok.pos;
    let negative = false;
    while (this.isOp('-') || this.isOp('+')) {
      if (this.advance().text === '-') negative = !negative;
    }
    if (this.tok.type !== 'num') this.fail(`a sign must be followed by a number, found ${this.describe(this.tok)}`);
    const node = this.numberNode(this.tok.text, pos, negative);
    this.advance();
    return node;
  }

  private numberNode(text: string, pos: SourcePosition, negative: boolean): LiteralNode {
    const radix = /^0([xXoObB])/.exec(text);
    if (radix) {
      const r = radix[1]!.toLowerCase();
      if (!RADIX_LITERAL[r]!.test(text)) this.fail(`invalid number literal '${text}'`, pos);
      const clean = text.replaceAll('_', '').replace(/[lL]$/, '');
      const value = BigInt(`0${r}${clean.slice(2)}`);
      return { kind: 'int', value: negative ? -value : value, pos };
    }
    if (INT_LITERAL.test(text)) {
      const value = BigInt(text.replaceAll('_', '').replace(/[lL]$/, ''));
      return { kind: 'int', value: negative ? -value : value, pos };
    }
    if (/^[0-9_]+[lL]?$/.test(text)) {
      this.fail(`invalid number literal '${text}': leading zeros are not permitted (use 0o for octal)`, pos);
    }
    if (!FLOAT_LITERAL.test(text)) this.fail(`invalid number literal '${text}'`, pos);
    const value = Number(text.replaceAll('_', ''));
    return { kind: 'float', value: negative ? -value : value, pos };
  }

  private name(depth: number): LiteralNode {
    const t = this.tok;
    const known = ['True', 'False', 'None'].includes(t.text) || this.calls.includes(t.text);
    if (!known) {
      const allowed = ['True', 'False', 'None', ...this.calls.map((c) => `${c}(...)`)].join(', ');
      this.fail(`name '${t.text}' is not allowed: only literals and ${allowed} are accepted`, t.pos);
    }
    this.advance();
    switch (t.text) {
      case 'True':
        return { kind: 'bool', value: true, pos: t.pos };
      case 'False':
        return { kind: 'bool', value: false, pos: t.pos };
      case 'None':
        return { kind: 'none', pos: t.pos };
    }
    if (!this.isOp('(')) this.fail(`expected '(' after ${t.text}`);
    this.advance();
    const args = this.items(')', depth, 'argument');
    return { kind: 'call', name: t.text, args, pos: t.pos };
  }

  private list(depth: number): LiteralNode {
    const open = this.advance();
    const items = this.items(']', depth, 'list item');
    return { kind: 'list', items, pos: open.pos };
  }

  /** `(x)` is x itself; `()` and `(x,)` and `(x, y)` are tuples. */
  private parenthesised(depth: number): LiteralNode {
    const open = this.advance();
    if (this.isOp(')')) {
      this.advance();
      return { kind: 'tuple', items: [], pos: open.pos };
    }
    const first = this.expression(depth + 1);
    if (this.isOp(')')) {
      this.advance();
      return first;
    }
    if (!this.isOp(',')) this.fail(`expected ',' or ')' after a tuple item, found ${this.describe(this.tok)}${this.missingComma()}`);
    this.advance();
    const rest = this.items(')', depth, 'tuple item');
    return { kind: 'tuple', items: [first, ...rest], pos: open.pos };
  }

  /** Comma-separated values up to `close`, a trailing comma allowed; consumes `close`. */
  private items(close: string, depth: number, what: string): LiteralNode[] {
    const items: LiteralNode[] = [];
    for (;;) {
      if (this.isOp(close)) {
        this.advance();
        return items;
      }
      items.push(this.expression(depth + 1));
      if (this.isOp(',')) {
        this.advance();
        continue;
      }
      if (this.isOp(close)) continue;
      if (this.tok.type === 'name' && this.tok.text === 'for') this.fail('comprehensions are not supported');
      this.fail(`expected ',' or '${close}' after a ${what}, found ${this.describe(this.tok)}${this.missingComma()}`);
    }
  }

  /** The usual cause of a value directly after a value: a comma left out. */
  private missingComma(): string {
    const t = this.tok;
    const startsValue = t.type === 'str' || t.type === 'num' || (t.type === 'op' && '([{'.includes(t.text));
    return startsValue ? ' (missing comma?)' : '';
  }

  private dict(depth: number): LiteralNode {
    const open = this.advance();
    const entries: DictEntryNode[] = [];
    for (;;) {
      if (this.isOp('}')) {
        this.advance();
        return { kind: 'dict', entries, pos: open.pos };
      }
      const key = this.expression(depth + 1);
      if (!this.isOp(':')) {
        if (this.isOp(',') || this.isOp('}')) this.fail('sets are not supported: expected \':\' after a dict key', this.tok.pos);
        this.fail(`expected ':' after a dict key, found ${this.describe(this.tok)}`);
      }
      this.advance();
      const value = this.expression(depth + 1);
      entries.push({ key, value });
      if (this.isOp(',')) {
        this.advance();
        continue;
      }
      if (this.isOp('}')) continue;
      this.fail(`expected ',' or '}' after a dict entry, found ${this.describe(this.tok)}${this.missingComma()}`);
    }
  }
}

/** Parses Python-literal text into a syntax tree, or throws a SourceError. */
export function parsePythonLiteral(text: string, options: ParseOptions = {}): LiteralNode {
  // Python reads source files with universal newlines.
  const src = text.replace(/\r\n?/g, '\n');
  return new Parser(new Lexer(src, options.file), options).parseDocument();
}
