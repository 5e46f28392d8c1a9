import { describe, expect, it } from 'vitest';
import { formatPyFloat, parsePyFloat, parsePyInt, pyStrip, pyStripChars } from './python-numbers.js';

// Expected values were produced by CPython 3.11 (float(), int(), repr()).

describe('parsePyFloat (Python float())', () => {
  it.each([
    [' 1_0.5 ', 10.5],
    ['1.', 1],
    ['.5', 0.5],
    ['1e3', 1000],
    ['-2.5E-2', -0.025],
    ['+7', 7],
    ['\t42\n', 42],
    ['\x1c3\x1f', 3],
    ['١٢', 12],
    ['𝟑𝟒', 34],
  ])('accepts %j', (text, value) => {
    expect(parsePyFloat(text)).toBe(value);
  });

  it('accepts inf, infinity and nan in any case and sign', () => {
    expect(parsePyFloat('inf')).toBe(Infinity);
    expect(parsePyFloat('-Infinity')).toBe(-Infinity);
    expect(parsePyFloat('+INF')).toBe(Infinity);
    expect(Number.isNaN(parsePyFloat('nan'))).toBe(true);
  });

  // Number() accepts several of these: '' and ' ' give 0, '0x10' gives 16, '1_0' NaN.
  it.each(['', ' ', '0x10', '1_', '_1', '1__0', '1e', '.', 'in f', '1000GB', '1,5', 'Infinityx', '0b1'])('rejects %j', (text) => {
    expect(parsePyFloat(text)).toBeNull();
  });
});

describe('parsePyInt (Python int())', () => {
  it('accepts what int() accepts', () => {
    expect(parsePyInt(' 4 ')).toBe(4n);
    expect(parsePyInt('+4')).toBe(4n);
    expect(parsePyInt('4_0')).toBe(40n);
    expect(parsePyInt('-12')).toBe(-12n);
    expect(parsePyInt('08')).toBe(8n);
    expect(parsePyInt('18446744073709551617')).toBe(18446744073709551617n);
  });

  it.each(['4.0', '', '*', '0x10', '1e3', '4_', 'four'])('rejects %j', (text) => {
    expect(parsePyInt(text)).toBeNull();
  });
});

describe('formatPyFloat (Python repr(float))', () => {
  it.each([
    [1200, '1200.0'],
    [1e16, '1e+16'],
    [1e-5, '1e-05'],
    [0.0001, '0.0001'],
    [1e22, '1e+22'],
    [-0, '-0.0'],
    [0, '0.0'],
    [123456789012345678, '1.2345678901234568e+17'],
    [1.5e-7, '1.5e-07'],
    [0.1, '0.1'],
    [2.5, '2.5'],
    [-1234.5678, '-1234.5678'],
    [9999999999999998, '9999999999999998.0'],
    [1.5e300, '1.5e+300'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
    [NaN, 'nan'],
  ])('%d → %s', (n, text) => {
    expect(formatPyFloat(n)).toBe(text);
  });
});

describe('strip', () => {
  it('strips Python whitespace, including \\x1c-\\x1f but not the BOM', () => {
    expect(pyStrip('\x1c a \u3000')).toBe('a');
    expect(pyStrip('\ufeffa')).toBe('\ufeffa');
  });

  it("strips characters like str.strip('\\'\"')", () => {
    expect(pyStripChars(` a"b' `, `'"`)).toBe(` a"b' `);
    expect(pyStripChars(`'"abc"'`, `'"`)).toBe('abc');
    expect(pyStripChars(`'abc"`, `'"`)).toBe('abc');
  });
});
