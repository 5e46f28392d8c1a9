import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJsonLiteral } from './json-literal.js';
import type { LiteralNode } from './literal-ast.js';
import { parsePythonLiteral } from './python-literal.js';
import { literalToValue, PyTuple } from './python-values.js';
import { SourceError } from './source-error.js';
import { parseYamlLiteral } from './yaml-literal.js';

const CONFIG = '/work/shared/fixtures/edeploy-config';

const value = (text: string) => literalToValue(parsePythonLiteral(text));

function errorOf(fn: () => unknown): SourceError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SourceError) return e;
    throw e;
  }
  throw new Error('expected a SourceError');
}

describe('parsePythonLiteral: values', () => {
  it('reads lists, tuples and dicts, with trailing commas', () => {
    expect(value("[1, (2, 3,), {'a': [],},]")).toEqual([1, new PyTuple([2, 3]), { a: [] }]);
  });

  it('tells a parenthesised value from a tuple', () => {
    expect(value('(1)')).toBe(1);
    expect(value('(1,)')).toEqual(new PyTuple([1]));
    expect(value('()')).toEqual(new PyTuple([]));
    expect(value('((("x")))')).toBe('x');
  });

  it('reads a bare top-level tuple as eval() does', () => {
    expect(value("'a', 'b'")).toEqual(new PyTuple(['a', 'b']));
  });

  it('reads True, False, None', () => {
    expect(value('[True, False, None]')).toEqual([true, false, null]);
  });

  it('reads ints in every base, with underscores, signs and the Python 2 L suffix', () => {
    expect(value('[0, 10, 1_000, 0x1F, 0o17, 0b101, -5, +5, - 7, --3, 2L, 000]')).toEqual([0, 10, 1000, 31, 15, 5, -5, 5, -7, 3, 2, 0]);
  });

  it('keeps big integers exact in the tree', () => {
    const node = parsePythonLiteral('18446744073709551615');
    expect(node).toMatchObject({ kind: 'int', value: 18446744073709551615n });
  });

  it('reads floats', () => {
    const n = parsePythonLiteral('[1.5, .5, 5., 1e3, 1E-3, -2.5e+2, 1_0.0_1]') as Extract<LiteralNode, { kind: 'list' }>;
    expect(n.items.map((i) => i.kind)).toEqual(Array(7).fill('float'));
    expect(literalToValue(n)).toEqual([1.5, 0.5, 5, 1000, 0.001, -250, 10.01]);
  });

  it('reads comments and the eDeploy mode line', () => {
    expect(value("# -*- python -*-\n\n[ # first\n 'a', # second\n]\n# end\n")).toEqual(['a']);
  });

  it('accepts a byte order mark and CRLF line ends', () => {
    expect(value("\ufeff[\r\n'a',\r\n'b']\r\n")).toEqual(['a', 'b']);
  });
});

describe('parsePythonLiteral: strings', () => {
  it('reads every quoting style', () => {
    expect(value(`["a", 'b', '''c'd''', """e"f\ng"""]`)).toEqual(['a', 'b', "c'd", 'e"f\ng']);
  });

  it('decodes escapes as Python 3 does', () => {
    expect(value(String.raw`'\\ \' \" \a \b \f \n \r \t \v \0 \101 \x41 \u00e9 \U0001F600'`)).toBe('\\ \' " \x07 \b \f \n \r \t \v \0 A A é 😀');
  });

  it('keeps unknown escapes as written, backslash included (regexp specs rely on it)', () => {
    expect(value(String.raw`'regexp(^\d+\.\w)'`)).toBe('regexp(^\\d+\\.\\w)');
  });

  it('joins lines ending in a backslash inside a string', () => {
    expect(value("'ab\\\ncd'")).toBe('abcd');
  });

  it('reads raw strings with their backslashes', () => {
    expect(value(String.raw`r'\d\'x'`)).toBe("\\d\\'x");
    expect(value(String.raw`R"a\nb"`)).toBe('a\\nb');
  });

  it('accepts u, b, br and ur prefixes', () => {
    expect(value(`[u'a', b'b', br'\\c', Ur'd']`)).toEqual(['a', 'b', '\\c', 'd']);
  });

  it('concatenates adjacent literals, across lines inside brackets', () => {
    expect(value(`['a' "b" '''c''',\n 'd'\n 'e']`)).toEqual(['abc', 'de']);
  });

  it('does not concatenate across a top-level newline', () => {
    const e = errorOf(() => parsePythonLiteral("'a'\n'b'"));
    expect([e.line, e.column]).toEqual([2, 1]);
  });
});

describe('parsePythonLiteral: generate() and refusals', () => {
  it('reads generate({...}) as a call node, never evaluating it', () => {
    const node = parsePythonLiteral("generate({'ip': '10.0.0.1-3'})");
    expect(node.kind).toBe('call');
    expect(node).toMatchObject({ name: 'generate', args: [{ kind: 'dict' }] });
  });

  it.each([
    ["__import__('os')", 1, 1, "name '__import__' is not allowed"],
    ["[open('/etc/passwd')]", 1, 2, "name 'open' is not allowed"],
    ['[1 + 2]', 1, 4, "expected ',' or ']'"],
    ["{'a'}", 1, 5, 'sets are not supported'],
    ["[x for x in 'ab']", 1, 2, "name 'x' is not allowed"],
    ["f'x'", 1, 1, 'f-strings'],
    ['1j', 1, 1, 'complex numbers'],
    ['0777', 1, 1, 'leading zeros'],
    ['[1, 2', 1, 6, "expected ',' or ']'"],
    ["'abc", 1, 1, 'unterminated string'],
    ["'''abc", 1, 1, 'unterminated triple-quoted string'],
    ["'a\nb'", 1, 1, 'newline inside a quoted string'],
    ['', 1, 1, 'empty file'],
    ["generate(model={'a': 1})", 1, 10, "name 'model' is not allowed"],
    ["'\\N{DASH}'", 1, 2, '\\N{...}'],
    ["'\\x4'", 1, 2, 'truncated \\x escape'],
    ['[1] [2]', 1, 5, 'expected the end of the file'],
  ])('refuses %j at %i:%i', (text, line, column, reason) => {
    const e = errorOf(() => parsePythonLiteral(text, { file: 'x.specs' }));
    expect(e.reason).toContain(reason);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toBe(`x.specs:${line}:${column}: ${e.reason}`);
  });

  it('refuses absurd nesting instead of overflowing the stack', () => {
    const e = errorOf(() => parsePythonLiteral('['.repeat(5000) + ']'.repeat(5000)));
    expect(e.reason).toContain('nesting deeper');
  });

  it('counts columns from 1 with a tab as one column', () => {
    const e = errorOf(() => parsePythonLiteral("[\n\t'a'\n\t'b' 1]"));
    expect([e.line, e.column]).toEqual([3, 6]);
  });
});

describe('the malformed eDeploy specs', () => {
  // Line 21 lacks its trailing comma, so line 22's tuple would be a call of line 21's.
  it.each(['hp-mlx.specs', 'hp-mlx-ctrl.specs'])('%s is refused at line 22, column 5', (name) => {
    const file = `${CONFIG}/${name}`;
    const e = errorOf(() => parsePythonLiteral(readFileSync(file, 'utf8'), { file }));
    expect(e.file).toBe(file);
    expect(e.line).toBe(22);
    expect(e.column).toBe(5);
    expect(e.message).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}:22:5: expected ',' or '\\]' after a list item, found '\\(' \\(missing comma\\?\\)$`));
  });
});

describe('parseJsonLiteral', () => {
  it('keeps integers and floats apart, and big integers exact', () => {
    const n = parseJsonLiteral('[2, 2.0, 1e3, -0, 18446744073709551615]') as Extract<LiteralNode, { kind: 'list' }>;
    expect(n.items.map((i) => i.kind)).toEqual(['int', 'float', 'float', 'int', 'int']);
    expect(n.items[4]).toMatchObject({ value: 18446744073709551615n });
  });

  it('decodes JSON escapes including surrogate pairs', () => {
    expect(literalToValue(parseJsonLiteral(String.raw`["\u00e9\ud83d\ude00\/\"\\\n"]`))).toEqual(['é😀/"\\\n']);
  });

  it('reads true, false, null and objects', () => {
    expect(literalToValue(parseJsonLiteral('{"a": [true, false, null]}'))).toEqual({ a: [true, false, null] });
  });

  it.each([
    ['[1,]', 1, 4, 'expected a JSON value'],
    ["['a']", 1, 2, 'expected a JSON value'],
    ['{"a": 1, "a": 2}', 1, 10, 'duplicate key'],
    ['[01]', 1, 2, 'invalid number'],
    ['[1]\n[2]', 2, 1, 'expected the end of the file'],
    ['{"a" 1}', 1, 6, "expected ':'"],
    ['"\\x"', 1, 2, 'invalid escape'],
  ])('refuses %j at %i:%i', (text, line, column, reason) => {
    const e = errorOf(() => parseJsonLiteral(text, { file: 'm.json' }));
    expect(e.reason).toContain(reason);
    expect([e.line, e.column]).toEqual([line, column]);
  });

  it('reads the fixture conversions as JSON.parse does', () => {
    for (const name of ['hp.specs.json', 'state.json', 'hp-mlx-ctrl.cmdb.json', 'kvm-test.cmdb.json']) {
      const text = readFileSync(`${CONFIG}/${name}`, 'utf8');
      expect(JSON.parse(JSON.stringify(literalToValue(parseJsonLiteral(text))))).toEqual(JSON.parse(text));
    }
  });
});

describe('parseYamlLiteral', () => {
  it('reads maps, sequences, scalars and aliases', () => {
    const node = parseYamlLiteral("a: &x [1, 2.5, s]\nb: *x\nc: {d: true, e: null}\n80: port\n");
    expect(literalToValue(node)).toEqual({ a: [1, 2.5, 's'], b: [1, 2.5, 's'], c: { d: true, e: null }, '80': 'port' });
  });

  it('tells 2 from 2.0 by the source text', () => {
    const node = parseYamlLiteral('[2, 2.0]') as Extract<LiteralNode, { kind: 'list' }>;
    expect(node.items.map((i) => i.kind)).toEqual(['int', 'float']);
  });

  it('reports syntax errors with line and column', () => {
    const e = errorOf(() => parseYamlLiteral('a: 1\nb: [1, 2\n', { file: 'm.yaml' }));
    expect(e.file).toBe('m.yaml');
    expect(e.line).toBeGreaterThanOrEqual(2);
  });

  it('refuses duplicate keys', () => {
    const e = errorOf(() => parseYamlLiteral('a: 1\na: 2\n'));
    expect(e.line).toBe(2);
  });
});

describe('literalToValue', () => {
  it('refuses non-string dict keys, naming the position', () => {
    const e = errorOf(() => literalToValue(parsePythonLiteral("{\n  1: 'a'}"), 'c.cmdb'));
    expect(e.message).toBe('c.cmdb:2:3: dict keys must be strings, found an integer');
  });

  it('refuses integers JavaScript cannot hold exactly', () => {
    expect(() => literalToValue(parsePythonLiteral('[2**3]'))).toThrow(SourceError);
    expect(errorOf(() => literalToValue(parsePythonLiteral('9007199254740993'))).reason).toContain('too large');
  });

  it('keeps a __proto__ key as data', () => {
    const v = value("{'__proto__': {'polluted': 1}}") as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});
