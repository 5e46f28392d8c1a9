import { describe, expect, it } from 'vitest';
import { cloneValue, dictFromEntries, isPyDict, nodeScalarText, plainToValue, pyEquals, pyScalarText, PyTuple, setKey, type PyDict } from './python-values.js';
import { parsePythonLiteral } from './python-literal.js';
import { formatLocation } from './source-error.js';

describe('pyEquals (Python ==)', () => {
  it('compares numbers and booleans by value, strings and numbers never equal', () => {
    expect(pyEquals(1, 1.0)).toBe(true);
    expect(pyEquals(true, 1)).toBe(true);
    expect(pyEquals(false, 0)).toBe(true);
    expect(pyEquals('1', 1)).toBe(false);
    expect(pyEquals(null, null)).toBe(true);
    expect(pyEquals(null, 0)).toBe(false);
  });

  it('compares containers structurally, tuples never equal to lists', () => {
    expect(pyEquals([1, 'a'], [1, 'a'])).toBe(true);
    expect(pyEquals(new PyTuple([1]), [1])).toBe(false);
    expect(pyEquals(new PyTuple([1, [2]]), new PyTuple([1, [2]]))).toBe(true);
    expect(pyEquals({ a: 1, b: [2] }, { b: [2], a: 1 })).toBe(true);
    expect(pyEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(pyEquals({ a: 1 }, [1])).toBe(false);
  });
});

describe('string forms (decision 8)', () => {
  it('gives Python str() of scalars', () => {
    expect([pyScalarText('x'), pyScalarText(2), pyScalarText(2.5), pyScalarText(true), pyScalarText(null)]).toEqual(['x', '2', '2.5', 'True', 'None']);
    const list = parsePythonLiteral("[2, 2.0, 1e16, -0.0, 18446744073709551615, 'a', False, None]");
    if (list.kind !== 'list') throw new Error('list expected');
    expect(list.items.map(nodeScalarText)).toEqual(['2', '2.0', '1e+16', '-0.0', '18446744073709551615', 'a', 'False', 'None']);
    expect(nodeScalarText(parsePythonLiteral('[1]'))).toBeNull();
  });
});

describe('dict helpers', () => {
  it('keeps __proto__ as a plain key', () => {
    const d: PyDict = {};
    setKey(d, '__proto__', 1);
    expect(Object.keys(d)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(d)).toBe(Object.prototype);
    expect(Object.keys(dictFromEntries([['__proto__', 2]]))).toEqual(['__proto__']);
  });

  it('clones deeply', () => {
    const v = { a: [1, { b: 2 }], t: new PyTuple([[3]]) };
    const c = cloneValue(v) as typeof v;
    expect(c).toEqual(v);
    expect(c.a).not.toBe(v.a);
    expect(c.t.items[0]).not.toBe(v.t.items[0]);
  });

  it('tells dicts from lists and tuples', () => {
    expect([isPyDict({}), isPyDict([]), isPyDict(new PyTuple([])), isPyDict(null), isPyDict('x')]).toEqual([true, false, false, false, false]);
  });

  it('converts plain JavaScript data', () => {
    expect(plainToValue({ a: [1, undefined, 3n], b: { c: 'd' } })).toEqual({ a: [1, null, 3], b: { c: 'd' } });
    expect(() => plainToValue(() => 1)).toThrow(TypeError);
  });
});

describe('formatLocation', () => {
  it('reads file:line:column', () => {
    expect(formatLocation({ file: 'hp.specs', line: 22, column: 5 })).toBe('hp.specs:22:5');
    expect(formatLocation({ line: 1, column: 1 })).toBe('<input>:1:1');
  });
});
