import { describe, expect, it } from 'vitest';
import { checkElement, compileElement, compileSpecs, describeFailure } from './spec-rules.js';

const none = new Map<string, string>();

describe('compileElement', () => {
  it('classifies values the way eDeploy reads them', () => {
    expect(compileElement('disk')).toMatchObject({ kind: 'literal' });
    expect(compileElement('$disk')).toMatchObject({ kind: 'variable', name: 'disk' });
    expect(compileElement('$$tag')).toMatchObject({ kind: 'variable', name: '$tag' });
    expect(compileElement('gt(4)')).toMatchObject({ kind: 'function' });
    expect(compileElement('$size=gt(20)')).toMatchObject({ kind: 'var-function', name: 'size' });
    expect(compileElement('$$size=gt(20)')).toMatchObject({ kind: 'var-function', name: '$size' });
    expect(compileElement('$v=abc')).toMatchObject({ kind: 'var-literal', name: 'v', literal: 'abc' });
    expect(compileElement('foo(1)')).toMatchObject({ kind: 'bad-function' });
    expect(compileElement('$foo(bar)')).toMatchObject({ kind: 'bad-function' });
    expect(compileElement('$x=foo(1)')).toMatchObject({ kind: 'var-bad-function', name: 'x' });
    expect(compileElement('gt(1, 2)')).toMatchObject({ kind: 'bad-function' });
    // Three parts when split on '=': the whole text is the "function", named '$var=regexp'.
    expect(compileElement('$var=regexp(a=b)')).toMatchObject({ kind: 'bad-function' });
    expect(compileElement('regexp(a=b)')).toMatchObject({ kind: 'function' });
    // Not a call shape: a literal.
    expect(compileElement('edeploy_test_vm ()')).toMatchObject({ kind: 'literal' });
    expect(compileElement('(x)')).toMatchObject({ kind: 'literal' });
    expect(compileElement('PowerEdge M520 (SKU=NotProvided;ModelName=PowerEdge M520)')).toMatchObject({ kind: 'bad-function' });
    expect(compileElement('')).toMatchObject({ kind: 'literal', text: '' });
    expect(compileElement('$a=b=c')).toMatchObject({ kind: 'variable', name: 'a=b=c' });
  });
});

describe('checkElement', () => {
  it('compares literals exactly', () => {
    expect(checkElement(compileElement('SAS'), 'SAS', none)).toEqual({ ok: true });
    expect(checkElement(compileElement('SAS'), 'sas', none)).toEqual({ ok: false, failure: { kind: 'literal', expected: 'SAS', actual: 'sas' } });
  });

  it('binds a free variable and requires the bound value otherwise', () => {
    expect(checkElement(compileElement('$d'), 'sda', none)).toEqual({ ok: true, bind: 'd' });
    expect(checkElement(compileElement('$d'), 'sda', new Map([['d', 'sda']]))).toEqual({ ok: true, bind: 'd' });
    expect(checkElement(compileElement('$d'), 'sdb', new Map([['d', 'sda']]))).toEqual({
      ok: false,
      failure: { kind: 'bound', variable: 'd', bound: 'sda', actual: 'sdb' },
    });
  });

  it('binds $var=function only when the function holds', () => {
    expect(checkElement(compileElement('$s=le(20)'), '20', none)).toEqual({ ok: true, bind: 's' });
    expect(checkElement(compileElement('$s=le(20)'), '21', none)).toMatchObject({ ok: false, failure: { kind: 'false' } });
    expect(checkElement(compileElement('$s=le(20)'), '7', new Map([['s', '8']]))).toMatchObject({ ok: false, failure: { kind: 'bound' } });
  });

  it('falls back to comparing the whole text when $var=function fails, as eDeploy did', () => {
    expect(checkElement(compileElement('$s=gt(3)'), '$s=gt(3)', none)).toEqual({ ok: true });
  });

  it('binds $var=literal when the value equals the literal (decision 4)', () => {
    expect(checkElement(compileElement('$v=SAS'), 'SAS', none)).toEqual({ ok: true, bind: 'v' });
    expect(checkElement(compileElement('$v=SAS'), 'SATA', none)).toMatchObject({ ok: false, failure: { kind: 'literal', expected: 'SAS' } });
    expect(checkElement(compileElement('$v='), '', none)).toEqual({ ok: true, bind: 'v' });
  });

  it('never matches an unknown function per position (decision 3)', () => {
    const el = compileElement('PowerEdge M520 (SKU=x)');
    const r = checkElement(el, 'PowerEdge M520 (SKU=x)', none);
    expect(r).toMatchObject({ ok: false, failure: { kind: 'not-a-function' } });
    if (!r.ok) expect(describeFailure(r.failure)).toContain("not a spec function");
  });

  it('gives odd values a reason instead of throwing (decision 2)', () => {
    const r = checkElement(compileElement('gt(4)'), '1000GB', none);
    expect(r).toEqual({ ok: false, failure: { kind: 'odd-value', expression: 'gt(4)', actual: '1000GB', error: "'1000GB' is not a number (gt() compares numbers)" } });
  });
});

describe('compileSpecs', () => {
  it('accepts tuples, rules and compiled specs, renumbering', () => {
    const [a] = compileSpecs([['disk', '$d', 'size', '8']]);
    const specs = compileSpecs([{ tuple: ['x', 'y', 'z', 'w'], at: { file: 'f', line: 3, column: 5 } }, a!]);
    expect(specs.map((s) => s.index)).toEqual([0, 1]);
    expect(specs[0]!.at).toEqual({ file: 'f', line: 3, column: 5 });
    expect(specs[1]!.tuple).toEqual(['disk', '$d', 'size', '8']);
  });

  it('refuses a spec that is not four strings', () => {
    expect(() => compileSpecs([['a', 'b', 'c'] as unknown as [string, string, string, string]])).toThrow(/4 strings/);
  });
});
