import type { DictEntryNode, LiteralNode } from './literal-ast.js';
import { SourceError, type SourcePosition } from './source-error.js';

/**
 * A strict JSON reader producing the same syntax tree as the Python-literal reader.
 * JSON.parse is not enough: it forgets whether a number was written `2` or `2.0` (Python,
 * and so the string form of a hardware value, tells them apart), rounds integers beyond
 * 2^53, and reports errors as a character offset instead of line and column.
 */

const MAX_DEPTH = 200;

class JsonParser {
  private i = 0;
  private line = 1;
  private lineStart = 0;

  constructor(
    private readonly src: string,
    private readonly file: string | undefined,
  ) {
    if (src.startsWith('\ufeff')) {
      this.i = 1;
      this.lineStart = 1;
    }
  }

  private here(): SourcePosition {
    return { line: this.line, column: this.i - this.lineStart + 1 };
  }

  private fail(reason: string, pos: SourcePosition = this.here()): never {
    throw new SourceError(reason, { file: this.file, ...pos });
  }

  private skipSpace(): void {
    for (;;) {
      const ch = this.src[this.i];
      if (ch === ' ' || ch === '\t' || ch === '\r') this.i++;
      else if (ch === '\n') {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else return;
    }
  }

  private found(): string {
    const ch = this.src[this.i];
    if (ch === undefined) return 'the end of the file';
    return /[\x21-\x7e]/.test(ch) ? `'${ch}'` : `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  }

  parseDocument(): LiteralNode {
    this.skipSpace();
    if (this.i >= this.src.length) this.fail('empty file: expected a JSON value');
    const root = this.value(0);
    this.skipSpace();
    if (this.i < this.src.length) this.fail(`expected the end of the file after the JSON value, found ${this.found()}`);
    return root;
  }

  private value(depth: number): LiteralNode {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    this.skipSpace();
    const pos = this.here();
    const ch = this.src[this.i];
    if (ch === '[') return this.array(depth, pos);
    if (ch === '{') return this.object(depth, pos);
    if (ch === '"') return { kind: 'str', value: this.string(), pos };
    if (ch === '-' || (ch !== undefined && /[0-9]/.test(ch))) return this.number(pos);
    for (const [word, node] of [
      ['true', { kind: 'bool', value: true, pos }],
      ['false', { kind: 'bool', value: false, pos }],
      ['null', { kind: 'none', pos }],
    ] as const) {
      if (this.src.startsWith(word, this.i) && !/[A-Za-z0-9_]/.test(this.src[this.i + word.length] ?? '')) {
        this.i += word.length;
        return node;
      }
    }
    return this.fail(`expected a JSON value, found ${this.found()}`);
  }

  private array(depth: number, pos: SourcePosition): LiteralNode {
    this.i++;
    const items: LiteralNode[] = [];
    this.skipSpace();
    if (this.src[this.i] === ']') {
      this.i++;
      return { kind: 'list', items, pos };
    }
    for (;;) {
      items.push(this.value(depth + 1));
      this.skipSpace();
      const ch = this.src[this.i];
      if (ch === ',') {
        this.i++;
        continue;
      }
      if (ch === ']') {
        this.i++;
        return { kind: 'list', items, pos };
      }
      this.fail(`expected ',' or ']' after an array item, found ${this.found()}`);
    }
  }

  private object(depth: number, pos: SourcePosition): LiteralNode {
    this.i++;
    const entries: DictEntryNode[] = [];
    const seen = new Set<string>();
    this.skipSpace();
    if (this.src[this.i] === '}') {
      this.i++;
      return { kind: 'dict', entries, pos };
    }
    for (;;) {
      this.skipSpace();
      const keyPos = this.here();
      if (this.src[this.i] !== '"') this.fail(`expected a string key, found ${this.found()}`);
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key "${key}"`, keyPos);
      seen.add(key);
      this.skipSpace();
      if (this.src[this.i] !== ':') this.fail(`expected ':' after an object key, found ${this.found()}`);
      this.i++;
      const value = this.value(depth + 1);
      entries.push({ key: { kind: 'str', value: key, pos: keyPos }, value });
      this.skipSpace();
      const ch = this.src[this.i];
      if (ch === ',') {
        this.i++;
        continue;
      }
      if (ch === '}') {
        this.i++;
        return { kind: 'dict', entries, pos };
      }
      this.fail(`expected ',' or '}' after an object member, found ${this.found()}`);
    }
  }

  private string(): string {
    const start = this.here();
    this.i++;
    let out = '';
    for (;;) {
      const ch = this.src[this.i];
      if (ch === undefined || ch === '\n') this.fail('unterminated string', start);
      if (ch === '"') {
        this.i++;
        return out;
      }
      if (ch < ' ') this.fail('control character in a string must be escaped');
      if (ch !== '\\') {
        out += ch;
        this.i++;
        continue;
      }
      const esc = this.src[this.i + 1];
      const escPos = this.here();
      this.i += 2;
      switch (esc) {
        case '"':
        case '\\':
        case '/':
          out += esc;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = this.src.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape', escPos);
          // Surrogate pairs arrive as two escapes and join naturally in a UTF-16 string.
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default:
          this.fail(`invalid escape '\\${esc ?? ''}'`, escPos);
      }
    }
  }

  private number(pos: SourcePosition): LiteralNode {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.src.slice(this.i));
    if (!m || /[0-9A-Za-z_.]/.test(this.src[this.i + m[0].length] ?? '')) this.fail('invalid number', pos);
    this.i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) return { kind: 'int', value: BigInt(m[0]), pos };
    return { kind: 'float', value: Number(m[0]), pos };
  }
}

/** Parses JSON text into the shared syntax tree, or throws a SourceError. */
export function parseJsonLiteral(text: string, options: { file?: string | undefined } = {}): LiteralNode {
  return new JsonParser(text, options.file).parseDocument();
}
