import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../core/facts.js';
import { explainMatch } from './explain.js';

type T = HwTuple;

const hw: T[] = [
  ['disk', 'sda', 'size', '1000GB'],
  ['disk', 'sdb', 'size', '500'],
  ['network', 'eth0', 'ipv4', '10.0.2.15'],
  ['network', 'eth0', 'link', 'no'],
  ['network', 'eth1', 'ipv4', '10.0.3.15'],
  ['network', 'eth1', 'link', 'yes'],
];

describe('explainMatch', () => {
  it('reports a match with its variables', () => {
    const e = explainMatch([['disk', '$d', 'size', 'gt(100)']], hw);
    expect(e).toMatchObject({ matched: true, vars: { d: 'sdb' }, failure: null });
    expect(e.text).toBe('matched: d=sdb');
  });

  it('names the rule no line matches, with the closest lines and why each was refused', () => {
    const specs = [
      { tuple: ['disk', '$d', 'size', 'gt(100)'] as T, at: { file: 'a.specs', line: 2, column: 5 } },
      { tuple: ['network', '$eth', 'ipv4', 'network(192.168.0.0/16)'] as T, at: { file: 'a.specs', line: 3, column: 5 } },
    ];
    const e = explainMatch(specs, hw);
    expect(e.matched).toBe(false);
    expect(e.vars).toEqual({});
    expect(e.failure).toMatchObject({
      kind: 'no-candidate',
      specIndex: 1,
      spec: ['network', '$eth', 'ipv4', 'network(192.168.0.0/16)'],
      at: { file: 'a.specs', line: 3, column: 5 },
      bound: { d: 'sdb' },
    });
    expect(e.failure!.nearMisses.map((m) => [m.lineIndex, m.position, m.failure?.kind])).toEqual([
      [2, 3, 'false'],
      [4, 3, 'false'],
      [3, 2, 'literal'],
    ]);
    expect(e.text).toBe(
      [
        "no match: rule 2 ('network', '$eth', 'ipv4', 'network(192.168.0.0/16)') at a.specs:3:5 matches no hardware line.",
        "  closest: ('network', 'eth0', 'ipv4', '10.0.2.15'): position 4: network(192.168.0.0/16) is false for '10.0.2.15'",
        "  closest: ('network', 'eth1', 'ipv4', '10.0.3.15'): position 4: network(192.168.0.0/16) is false for '10.0.3.15'",
        "  closest: ('network', 'eth0', 'link', 'no'): position 3: 'link' is not 'ipv4'",
      ].join('\n'),
    );
  });

  it('explains odd values instead of failing (decision 2)', () => {
    const e = explainMatch([['disk', 'sda', 'size', 'gt(4)']], hw);
    expect(e.failure!.nearMisses[0]).toMatchObject({
      lineIndex: 0,
      position: 3,
      failure: { kind: 'odd-value', actual: '1000GB', error: "'1000GB' is not a number (gt() compares numbers)" },
    });
    expect(e.text).toContain("gt(4) cannot be applied to '1000GB': '1000GB' is not a number");
  });

  it('says when variables bound earlier are what stands in the way', () => {
    const e = explainMatch(
      [
        ['network', '$eth', 'ipv4', 'network(10.0.2.0/24)'],
        ['network', '$eth', 'link', 'yes'],
      ],
      hw,
    );
    expect(e.failure).toMatchObject({ kind: 'conflict', specIndex: 1, bound: { eth: 'eth0' } });
    expect(e.failure!.nearMisses[0]).toMatchObject({ lineIndex: 5, failure: { kind: 'bound', variable: 'eth', bound: 'eth0', actual: 'eth1' } });
    expect(e.failure!.nearMisses[1]).toMatchObject({ lineIndex: 3, position: 3, failure: { kind: 'literal', expected: 'yes', actual: 'no' } });
    expect(e.text).toContain("$eth is already bound to 'eth0', not 'eth1'");
  });

  it('says when the only fitting lines were taken by earlier rules', () => {
    const e = explainMatch(
      [
        ['disk', '$a', 'size', '$s'],
        ['disk', '$b', 'size', '$t'],
        ['disk', '$c', 'size', '$u'],
      ],
      hw,
    );
    expect(e.failure).toMatchObject({ kind: 'lines-taken', specIndex: 2 });
    expect(e.failure!.nearMisses.map((m) => [m.lineIndex, m.takenBy])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(e.text).toContain('already taken by rule 1');
  });

  it('explains an unknown function', () => {
    const e = explainMatch([['system', '$x', 'name', 'Gen8 (654081-B21)']], [['system', 'product', 'name', 'Gen8 (654081-B21)']]);
    expect(e.failure!.nearMisses[0]!.failure).toMatchObject({ kind: 'not-a-function' });
    expect(e.text).toContain("has the form of a call to 'Gen8', which is not a spec function");
  });

  it('mentions the step limit', () => {
    const lines: T[] = [...Array.from({ length: 8 }, (_, i): T => ['disk', `sd${i}`, 'size', '1']), ['network', 'eth0', 'serial', 'aa']];
    const specs: T[] = [...Array.from({ length: 6 }, (_, i): T => ['disk', `$d${i}`, 'size', '1']), ['network', '$d0', 'serial', '$mac']];
    const e = explainMatch(specs, lines, { maxSteps: 5000 });
    expect(e.limitReached).toBe(true);
    expect(e.failure).toMatchObject({ kind: 'conflict', specIndex: 6 });
    expect(e.text).toContain('step limit');
  });
});
