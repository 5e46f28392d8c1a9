import { describe, expect, it } from 'vitest';
import { callShapeName, evaluateExpression, formatExpression, parseExpression, type CallNode, type EvalResult } from './expression.js';

function parse(text: string): CallNode {
  const p = parseExpression(text);
  if (!p.ok) throw new Error(p.error);
  return p.expr;
}

const run = (text: string, value: string): EvalResult => evaluateExpression(parse(text), value);
const holds = (text: string, value: string): boolean => {
  const r = run(text, value);
  if (!r.ok) throw new Error(r.error);
  return r.value === true || (typeof r.value === 'string' && r.value.length > 0);
};

describe('parseExpression (decision 3)', () => {
  it('ignores whitespace around commas and inside parentheses', () => {
    expect(formatExpression(parse('in(10 , 20)'))).toBe('in(10, 20)');
    expect(formatExpression(parse('  gt( 5 )  '))).toBe('gt(5)');
    expect(formatExpression(parse('gt (5)'))).toBe('gt(5)');
  });

  it('parses nested calls with several arguments', () => {
    expect(parse('and(range(1, 5), gt(2))')).toEqual({
      type: 'call',
      name: 'and',
      args: [
        { type: 'call', name: 'range', args: [{ type: 'text', value: '1' }, { type: 'text', value: '5' }] },
        { type: 'call', name: 'gt', args: [{ type: 'text', value: '2' }] },
      ],
    });
    expect(formatExpression(parse('not(regexp(^28:d2:))'))).toBe('not(regexp(^28:d2:))');
  });

  it('keeps groups, classes, repeats and escaped characters of a regular expression together', () => {
    expect(parse('regexp(^(eth|em)[0-9,]{1,3}\\)$)').args[0]).toEqual({ type: 'text', value: '^(eth|em)[0-9,]{1,3}\\)$' });
  });

  it('takes quoted arguments literally, commas and parentheses included', () => {
    expect(parse(`in("vda", 'a, b)')`).args).toEqual([
      { type: 'text', value: 'vda' },
      { type: 'text', value: 'a, b)' },
    ]);
  });

  it('reads an argument whose parentheses never close up to the last one, as eDeploy did', () => {
    expect(parse('regexp(a(b)').args[0]).toEqual({ type: 'text', value: 'a(b' });
    expect(parse('regexp(a{1)').args[0]).toEqual({ type: 'text', value: 'a{1' });
  });

  it('treats an unknown nested name as text, as eDeploy did', () => {
    expect(parse('in(foo(1), x)').args[0]).toEqual({ type: 'text', value: 'foo(1)' });
  });

  it.each([
    ['gt(1, 2)', 'gt() takes 1 argument, got 2'],
    ['range(1)', 'range() takes 2 arguments, got 1'],
    ['and(gt(1))', 'and() takes at least 2 arguments, got 1'],
    ['not()', 'not() takes 1 argument, got 0'],
    ['gt(1) x', "unexpected 'x'"],
    ['gt(1', "missing ')'"],
    ['foo(1)', "unknown function 'foo'"],
  ])('refuses %j', (text, message) => {
    const p = parseExpression(text);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.error).toContain(message);
  });
});

describe("eDeploy's call shape", () => {
  it('recognises calls the way eDeploy did', () => {
    expect(callShapeName('gt(4)')).toBe('gt');
    expect(callShapeName('foo(1)')).toBe('foo');
    expect(callShapeName('PowerEdge M520 (SKU=NotProvided;ModelName=PowerEdge M520)')).toBe('PowerEdge M520');
    expect(callShapeName('edeploy_test_vm ()')).toBeNull();
    expect(callShapeName('(x)')).toBeNull();
    expect(callShapeName('gt()')).toBeNull();
    expect(callShapeName('Intel(R) Xeon(R) CPU E5-2420 v2 @ 2.20GHz')).toBeNull();
  });
});

describe('evaluateExpression', () => {
  it('compares numbers with float() semantics', () => {
    expect(holds('gt(10)', '20')).toBe(true);
    expect(holds('ge(10.1)', '10.5')).toBe(true);
    expect(holds('lt(30)', '20')).toBe(true);
    expect(holds('le(20)', '20')).toBe(true);
    expect(holds('gt(20)', '20')).toBe(false);
    expect(holds('gt(999)', '1e3')).toBe(true);
    expect(holds('gt(4)', ' 5 ')).toBe(true);
    expect(holds('lt(0)', '-inf')).toBe(true);
    expect(holds('gt(0)', 'nan')).toBe(false);
    expect(holds('ge(2000000000)', '137438953472')).toBe(true);
  });

  it('range() is inclusive at both ends', () => {
    expect(holds('range(1, 5)', '1')).toBe(true);
    expect(holds('range(1, 5)', '5')).toBe(true);
    expect(holds('range(1, 5)', '5.5')).toBe(false);
  });

  it('in() compares strings', () => {
    expect(holds('in(10, 20, 30)', '20')).toBe(true);
    expect(holds('in(10, 20)', '20.0')).toBe(false);
    expect(holds('in(10 , 20)', '10')).toBe(true);
    expect(holds('in("vda", "vdb")', 'vdb')).toBe(true);
  });

  it('network() matches IPv4 and IPv6', () => {
    expect(holds('network(192.168.122.0/24)', '192.168.122.15')).toBe(true);
    expect(holds('network(10.0.2.0/24)', '1.2.3.15')).toBe(false);
    expect(holds('network(2001:db8::/32)', '2001:db8::42')).toBe(true);
    expect(holds('network(10.0.0.0/8)', '2001:db8::42')).toBe(false);
  });

  it('regexp() searches with Python semantics', () => {
    expect(holds('regexp(^28:d2:)', '28:d2:44:1b:0a:8b')).toBe(true);
    expect(holds('regexp(d2)', '28:d2:44')).toBe(true);
    expect(holds('regexp(^\\w+$)', 'héllo')).toBe(true);
  });

  it('not, and, or follow Python truthiness', () => {
    expect(holds('not(regexp(^28:d2:))', '20:d2:44:1b:0a:8b')).toBe(true);
    expect(holds('and(gt(20), lt(50))', '40')).toBe(true);
    expect(holds('and(gt(20), lt(50))', '60')).toBe(false);
    expect(holds('or(lt(20), gt(30))', '40')).toBe(true);
    expect(holds('or(lt(20), gt(30))', '25')).toBe(false);
    expect(holds('and(range(1, 5), gt(2))', '3')).toBe(true);
    expect(holds('and(range(1, 5), gt(2))', '2')).toBe(false);
    expect(holds('and(gt(1), lt(9), not(in(5)))', '5')).toBe(false);
    expect(run('and(x, y)', 'v')).toEqual({ ok: true, value: 'y' });
    expect(run('or(x, y)', 'v')).toEqual({ ok: true, value: 'x' });
    expect(holds('not(foo(1))', 'v')).toBe(false);
  });

  it('gives a nested condition the numeric value Python gives a bool', () => {
    // float(True) == 1.0 in Python.
    expect(holds('ge(gt(5))', '1')).toBe(true);
  });

  it('strips quote characters from the hardware value, as eDeploy did', () => {
    expect(holds('in(abc)', `"abc'`)).toBe(true);
    expect(holds('gt(4)', "'5'")).toBe(true);
  });

  it('never evaluates the hardware value as an expression', () => {
    expect(holds('in(x)', 'or(x, y)')).toBe(false);
  });

  describe('odd values do not throw; they give a reason (decision 2)', () => {
    it.each([
      ['gt(4)', '1000GB', "'1000GB' is not a number"],
      ['gt(4)', '', "'' is not a number"],
      ['gt(4)', '0x10', "'0x10' is not a number"],
      ['gt(x)', '5', "gt(): 'x' is not a number"],
      ['range(a, 5)', '3', "'a' is not a number"],
      ['network(10.0.0.0/8)', 'eth0', "'eth0' is not an IP address"],
      ['network(192.168.2.1/24)', '192.168.2.2', 'host bits set'],
      ['network(10.0.0.0/8)', '010.0.0.1', 'not an IP address'],
      ['regexp(a{1)', 'x', ''],
      ['regexp(\\q)', 'x', 'bad escape'],
      ['regexp(in(1))', 'x', 'needs a pattern'],
      ['regexp(gt(1))', 'x', "'x' is not a number"],
      ['and(gt(1), lt(x))', '5', "'x' is not a number"],
    ])('%s against %j', (expr, value, reason) => {
      const r = run(expr, value);
      if (reason === '') {
        // Python reads `a{1` as a literal; it is not an error.
        expect(r).toEqual({ ok: true, value: false });
        return;
      }
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain(reason);
    });
  });
});
