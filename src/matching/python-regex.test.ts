import { describe, expect, it } from 'vitest';
import { compilePythonRegex, pythonSearch } from './python-regex.js';

// Expected answers are what CPython 3.11's re.search gave.
const search = (pattern: string, value: string): boolean => {
  const r = pythonSearch(pattern, value);
  if (!r.ok) throw new Error(r.error);
  return r.found;
};

describe('pythonSearch', () => {
  it('searches, unanchored', () => {
    expect(search('28:d2:', '00:28:d2:44')).toBe(true);
    expect(search('^28:d2:', '00:28:d2:44')).toBe(false);
  });

  it('uses Unicode \\w, \\d, \\s and \\b as Python 3 does', () => {
    expect(search('\\w', 'é')).toBe(true);
    expect(search('\\d', '٣')).toBe(true);
    expect(search('\\s', '\x1c')).toBe(true);
    expect(search('\\bé', ' é')).toBe(true);
    expect(search('^\\W+$', 'é')).toBe(false);
    expect(search('[\\w]', 'é')).toBe(true);
    expect(search('[^\\W]', 'é')).toBe(true);
  });

  it('honours (?a) for ASCII classes', () => {
    expect(search('(?a)\\w', 'é')).toBe(false);
  });

  it("matches $ before a final newline, and . against \\r, as Python's re", () => {
    expect(search('a$', 'a\n')).toBe(true);
    expect(search('a$', 'a\n\n')).toBe(false);
    expect(search('^b', 'a\nb')).toBe(false);
    expect(search('(?m)^b', 'a\nb')).toBe(true);
    expect(search('^.$', '\r')).toBe(true);
    expect(search('^.$', '\n')).toBe(false);
    expect(search('(?s)^.$', '\n')).toBe(true);
    expect(search('\\Aab\\Z', 'ab')).toBe(true);
    expect(search('ab\\Z', 'ab\n')).toBe(false);
  });

  it('translates named groups and backreferences', () => {
    expect(search('(?P<x>ab)-(?P=x)', 'ab-ab')).toBe(true);
    expect(search('(a)(b)\\2\\1', 'abba')).toBe(true);
    expect(search('(a)\\1', 'aa')).toBe(true);
  });

  it('reads Python repeat forms and literal braces', () => {
    expect(search('^a{,2}$', 'aa')).toBe(true);
    expect(search('^a{,2}$', 'aaa')).toBe(false);
    expect(search('^a{,}$', 'aaaa')).toBe(true);
    expect(search('^a{2}$', 'aa')).toBe(true);
    expect(search('a{1,', 'a{1,')).toBe(true);
    expect(search('a{}', 'a{}')).toBe(true);
    expect(search('x}', 'x}')).toBe(true);
    expect(search(']', 'a]')).toBe(true);
  });

  it('reads classes as Python does', () => {
    expect(search('[]a]', ']')).toBe(true);
    expect(search('[^]a]', 'b')).toBe(true);
    expect(search('[^]a]', ']')).toBe(false);
    expect(search('[\\b]', '\b')).toBe(true);
    expect(search('[a-c-]', '-')).toBe(true);
    expect(search('[(]', '(')).toBe(true);
    expect(search('[[]', '[')).toBe(true);
    expect(search('[&&]', '&')).toBe(true);
  });

  it('accepts escaped punctuation that JavaScript unicode mode would refuse', () => {
    expect(search('\\-\\:\\/\\ \\#', '-:/ #')).toBe(true);
  });

  it('reads octal and hex escapes', () => {
    expect(search('\\0', '\0')).toBe(true);
    expect(search('\\101', 'A')).toBe(true);
    expect(search('\\x41\\u00e9', 'Aé')).toBe(true);
  });

  it('applies leading inline flags, including verbose mode', () => {
    expect(search('(?i)ABC', 'xabc')).toBe(true);
    expect(search('(?i)(?m)^b', 'a\nB')).toBe(true);
    expect(search('(?x) a b  # comment\n c', 'abc')).toBe(true);
    expect(search('(?x)[ ]', ' ')).toBe(true);
  });

  it('drops (?#...) comments', () => {
    expect(search('a(?#note)b', 'ab')).toBe(true);
  });

  it('supports lookarounds', () => {
    expect(search('a(?=b)', 'ab')).toBe(true);
    expect(search('(?<!x)b', 'ab')).toBe(true);
  });
});

describe('patterns Python refuses, and ones JavaScript cannot express', () => {
  it.each([
    ['\\q', 'bad escape \\q'],
    ['\\8', 'invalid'],
    ['(a)\\12', 'invalid'],
    ['a(?i)b', 'global flags not at the start'],
    ['(?<n>a)', 'unknown extension'],
    ['[a-\\d]', 'bad character range'],
    ['[z-a]', 'bad character range'],
    ['a**', 'invalid'],
    ['(', 'invalid'],
    ['[abc', 'unterminated character set'],
  ])('%j is an error', (pattern, message) => {
    const r = compilePythonRegex(pattern);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it.each(['(?i:a)b', '(?>a)', 'x*+', '(a)?(?(1)b|c)', '\\N{EM DASH}'])('%j is reported as unsupported', (pattern) => {
    const r = compilePythonRegex(pattern);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/not supported/);
  });
});
