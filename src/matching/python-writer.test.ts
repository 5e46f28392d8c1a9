import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePythonLiteral } from './python-literal.js';
import { literalToValue, PyTuple, type PyValue } from './python-values.js';
import { formatPython, reprPython, reprString } from './python-writer.js';

// Every expected text below is what CPython 3.11's pprint.pformat / repr printed for the
// same data.

describe('reprString', () => {
  it('quotes as Python does', () => {
    expect(reprString("it's")).toBe(`"it's"`);
    expect(reprString('a"b')).toBe(`'a"b'`);
    expect(reprString(`a'b"c`)).toBe(`'a\\'b"c'`);
    expect(reprString('back\\slash')).toBe(`'back\\\\slash'`);
  });

  it('escapes what is not printable and keeps printable Unicode', () => {
    expect(reprString('\x00\t\n\u2028é\x7f\x85')).toBe(`'\\x00\\t\\n\\u2028é\\x7f\\x85'`);
    expect(reprString('\u{1F600} \u{E0001}')).toBe(`'\u{1F600} \\U000e0001'`);
  });
});

describe('formatPython (pprint)', () => {
  it('lays out the README example as pprint does', () => {
    const entries: PyValue = [
      { disk: 'vda', eth: 'eth0', hostname: 'host3', ip: '192.168.122.3', mac: '52:54:00:88:17:3c', used: 1 },
      { ip: '192.168.122.4', hostname: 'host04' },
    ];
    expect(formatPython(entries)).toBe(
      "[{'disk': 'vda',\n  'eth': 'eth0',\n  'hostname': 'host3',\n  'ip': '192.168.122.3',\n  'mac': '52:54:00:88:17:3c',\n  'used': 1},\n {'hostname': 'host04', 'ip': '192.168.122.4'}]\n",
    );
  });

  it('writes a state list of tuples on one line', () => {
    const state = [new PyTuple(['hp', 3]), new PyTuple(['vm', '*']), new PyTuple(['kvm-test', '4'])];
    expect(formatPython(state)).toBe("[('hp', 3), ('vm', '*'), ('kvm-test', '4')]\n");
  });

  it('breaks nested containers, aligning values after their key', () => {
    const v = {
      a: [1, 2, new PyTuple([3])],
      b: { z: 1.5, y: null, x: true },
      c: new PyTuple(['x'.repeat(30), 'y'.repeat(30), 'z'.repeat(30)]),
      d: new PyTuple([]),
      e: [],
      f: {},
    };
    expect(formatPython(v)).toBe(
      "{'a': [1, 2, (3,)],\n 'b': {'x': True, 'y': None, 'z': 1.5},\n 'c': ('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n       'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy',\n       'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'),\n 'd': (),\n 'e': [],\n 'f': {}}\n",
    );
  });

  it('handles a single-element tuple that must break', () => {
    expect(formatPython(new PyTuple([new PyTuple(['a'.repeat(40), 'b'.repeat(40)])]))).toBe(
      "(('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',\n  'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'),)\n",
    );
  });

  it('indents deeply nested entries', () => {
    expect(formatPython([{ k: [{ a: 'b'.repeat(40), c: 'd'.repeat(40) }] }])).toBe(
      "[{'k': [{'a': 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',\n         'c': 'dddddddddddddddddddddddddddddddddddddddd'}]}]\n",
    );
    expect(formatPython({ ['k'.repeat(70)]: ['v'.repeat(10), 'w'.repeat(10)] })).toBe(
      `{'${'k'.repeat(70)}': ['vvvvvvvvvv',\n${' '.repeat(76)}'wwwwwwwwww']}\n`,
    );
  });

  it('writes floats, None, escapes and quotes like repr', () => {
    const v = [{ a: 1.5, b: -0.5, c: 2.5e-7, d: null, e: new PyTuple([]), f: new PyTuple(['only']), g: [[]], h: "it's", i: 'tab\there', j: 'x'.repeat(40) }];
    expect(formatPython(v)).toBe(
      `[{'a': 1.5,\n  'b': -0.5,\n  'c': 2.5e-07,\n  'd': None,\n  'e': (),\n  'f': ('only',),\n  'g': [[]],\n  'h': "it's",\n  'i': 'tab\\there',\n  'j': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}]\n`,
    );
  });

  it('sorts keys by code point, whatever JavaScript does with integer-like keys', () => {
    expect(reprPython({ é: 1, z: 2, a: 3, B: 4, _: 5, '10': 6, '9': 7 })).toBe("{'10': 6, '9': 7, 'B': 4, '_': 5, 'a': 3, 'z': 2, 'é': 1}");
  });
});

const pyValue = fc.letrec<{ value: PyValue }>((tie) => ({
  value: fc.oneof<fc.Arbitrary<PyValue>[]>(
    { depthSize: 'small' },
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.integer({ min: -1e9, max: 1e9 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => new PyTuple(items)),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('round trip', () => {
  it('reads back what it writes', () => {
    fc.assert(
      fc.property(pyValue, (v) => {
        expect(literalToValue(parsePythonLiteral(formatPython(v)))).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });
});
