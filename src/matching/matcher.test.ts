import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../core/facts.js';
import { HardwareIndex, MAX_BACKTRACK_DEPTH, matchAll, matchSpec } from './matcher.js';

type T = HwTuple;

describe('matchAll: variables', () => {
  const hw: T[] = [
    ['system', 'product', 'serial', 'S1'],
    ['disk', '1I:1:1', 'size', '1000GB'],
    ['disk', '1I:1:1', 'type', 'SATA'],
    ['disk', '1I:1:2', 'size', '1000GB'],
    ['disk', '1I:1:3', 'size', '1000GB'],
    ['disk', '1I:1:4', 'size', '1000GB'],
    ['disk', '2I:1:5', 'size', '1000GB'],
    ['disk', '2I:1:6', 'size', '1000GB'],
    ['disk', '2I:1:7', 'size', '100GB'],
    ['disk', '2I:1:7', 'type', 'SSDSATA'],
    ['disk', '2I:1:8', 'size', '100GB'],
  ];

  it('gives each spec the first line that matches, in spec order', () => {
    const specs: T[] = [
      ['system', 'product', 'serial', 'S1'],
      ['disk', '$disk1', 'size', '100GB'],
      ['disk', '$disk2', 'size', '100GB'],
      ['disk', '$disk3', 'size', '1000GB'],
      ['disk', '$disk4', 'size', '1000GB'],
      ['disk', '$disk5', 'size', '1000GB'],
      ['disk', '$disk6', 'size', '1000GB'],
      ['disk', '$disk7', 'size', '1000GB'],
      ['disk', '$disk8', 'size', '1000GB'],
    ];
    const r = matchAll(specs, hw);
    expect(r).toEqual({
      matched: true,
      vars: { disk1: '2I:1:7', disk2: '2I:1:8', disk3: '1I:1:1', disk4: '1I:1:2', disk5: '1I:1:3', disk6: '1I:1:4', disk7: '2I:1:5', disk8: '2I:1:6' },
      cmdbVars: {},
      limitReached: false,
    });
  });

  it('binds two variables on one line', () => {
    expect(matchAll([['disk', '$disk', 'size', '$size']], [['disk', 'vda', 'size', '8']]).vars).toEqual({ disk: 'vda', size: '8' });
  });

  it('makes $$ variables CMDB keys, by bare name', () => {
    const r = matchAll([['disk', '$$disk', 'size', '$size']], [['disk', 'vda', 'size', '8']]);
    expect(r.vars).toEqual({ disk: 'vda', size: '8' });
    expect(r.cmdbVars).toEqual({ disk: 'vda' });
  });

  it('binds $var=function and $$var=function when the function holds', () => {
    const hwl: T[] = [['disk', 'vda', 'size', '20']];
    expect(matchAll([['disk', '$disk', 'size', '$size=le(20)']], hwl).vars).toEqual({ disk: 'vda', size: '20' });
    expect(matchAll([['disk', '$disk', 'size', '$$size=ge(20)']], hwl).cmdbVars).toEqual({ size: '20' });
    expect(matchAll([['disk', '$disk', 'size', '$size=lt(20)']], hwl).matched).toBe(false);
    expect(matchAll([['disk', '$disk=in("vda", "vdb")', 'size', '20']], hwl).vars).toEqual({ disk: 'vda' });
    expect(matchAll([['network', '$eth', 'serial', '$mac=not(regexp(^28:d2:))']], [['network', 'eth0', 'serial', '20:d2:44:1b:0a:8b']]).vars).toEqual({
      eth: 'eth0',
      mac: '20:d2:44:1b:0a:8b',
    });
  });

  it('binds $var=literal when the value equals it (decision 4)', () => {
    const hwl: T[] = [
      ['disk', 'sda', 'type', 'SATA'],
      ['disk', 'sdb', 'type', 'SAS'],
    ];
    expect(matchAll([['disk', '$d', 'type', '$t=SAS']], hwl).vars).toEqual({ d: 'sdb', t: 'SAS' });
    expect(matchAll([['disk', '$d', 'type', '$t=NVMe']], hwl).matched).toBe(false);
  });

  it('checks a variable bound by an earlier spec', () => {
    const hwl: T[] = [
      ['disk', 'b', 'size', '100'],
      ['disk', 'a', 'size', '1000'],
      ['disk', 'a', 'control', 'hpa'],
      ['disk', 'b', 'control', 'hpa'],
    ];
    const specs: T[] = [
      ['disk', '$d1', 'size', '100'],
      ['disk', '$d1', 'control', 'hpa'],
      ['disk', '$d2', 'size', '1000'],
    ];
    expect(matchAll(specs, hwl).vars).toEqual({ d1: 'b', d2: 'a' });
  });

  it('keeps $x and $$x apart until the end, when $$x wins', () => {
    const hwl: T[] = [
      ['a', '1', 'k', 'v'],
      ['b', '2', 'k', 'v'],
    ];
    const r = matchAll(
      [
        ['a', '$x', 'k', 'v'],
        ['b', '$$x', 'k', 'v'],
      ],
      hwl,
    );
    expect(r.vars).toEqual({ x: '2' });
    expect(r.cmdbVars).toEqual({ x: '2' });
  });

  it('lets the last occurrence win when a variable appears twice in one spec', () => {
    expect(matchAll([['disk', '$x', 'size', '$x']], [['disk', 'vda', 'size', '8']]).vars).toEqual({ x: '8' });
  });

  it('needs every spec on a distinct line', () => {
    const hwl: T[] = [
      ['disk', 'vda', 'size', '8'],
      ['disk', 'vdb', 'size', '8'],
    ];
    expect(
      matchAll(
        [
          ['disk', 'vda', 'size', '8'],
          ['disk', 'vdb', 'size', '16'],
        ],
        hwl,
      ).matched,
    ).toBe(false);
    expect(
      matchAll(
        [
          ['disk', '$a', 'size', '8'],
          ['disk', '$b', 'size', '8'],
          ['disk', '$c', 'size', '8'],
        ],
        hwl,
      ).matched,
    ).toBe(false);
  });

  it('matches a line literally equal to the spec before evaluating anything', () => {
    expect(matchAll([['x', 'y', 'z', 'gt(5)']], [['x', 'y', 'z', 'gt(5)']]).matched).toBe(true);
    expect(matchAll([['x', 'y', 'z', 'gt(5)']], [['x', 'y', 'z', '3']]).matched).toBe(false);
  });

  it('matches an unknown-function-shaped value only through a whole identical line', () => {
    const name = 'PowerEdge M520 (SKU=NotProvided;ModelName=PowerEdge M520)';
    const hwl: T[] = [['system', 'product', 'name', name]];
    expect(matchAll([['system', 'product', 'name', name]], hwl).matched).toBe(true);
    expect(matchAll([['system', '$p', 'name', name]], hwl).matched).toBe(false);
    expect(matchAll([['system', 'product', 'name', '$foo(bar)']], [['system', 'product', 'name', '$foo(bar)x']]).matched).toBe(false);
  });

  it('compares an empty spec value literally instead of crashing', () => {
    expect(matchAll([['ldisk', '$l', 'name', '']], [['ldisk', 'disk0', 'name', '']]).vars).toEqual({ l: 'disk0' });
  });

  it('does not modify its inputs', () => {
    const specs: T[] = [['disk', '$d', 'size', '8']];
    const hwl: T[] = [['disk', 'vda', 'size', '8']];
    const before = JSON.stringify([specs, hwl]);
    matchAll(specs, hwl);
    expect(JSON.stringify([specs, hwl])).toBe(before);
  });

  it('matches an empty spec list', () => {
    expect(matchAll([], [['a', 'b', 'c', 'd']])).toMatchObject({ matched: true, vars: {} });
  });
});

describe('matchAll: backtracking', () => {
  const hw: T[] = [
    ['disk', 'vda', 'size', '8'],
    ['disk', 'vda', 'type', 'a'],
    ['disk', 'vdb', 'size', '8'],
    ['disk', 'vdb', 'type', 'b'],
  ];

  it('abandons the first candidate line when a later spec rejects it', () => {
    const r = matchAll(
      [
        ['disk', '$disk', 'size', '8'],
        ['disk', '$disk', 'type', 'b'],
      ],
      hw,
    );
    expect(r.vars).toEqual({ disk: 'vdb' });
  });

  it('continues after a backtrack with the abandoned line still available', () => {
    const r = matchAll(
      [
        ['disk', '$disk', 'size', '8'],
        ['disk', '$disk', 'type', 'b'],
        ['disk', '$disk2', 'size', '8'],
      ],
      hw,
    );
    expect(r.vars).toEqual({ disk: 'vdb', disk2: 'vda' });
  });

  it('fails when no choice works, leaving no bindings (decision 5)', () => {
    const r = matchAll(
      [
        ['disk', '$disk', 'size', '8'],
        ['disk', '$disk', 'type', 'c'],
        ['disk', '$disk2', 'size', '8'],
      ],
      hw,
    );
    expect(r).toEqual({ matched: false, vars: {}, cmdbVars: {}, limitReached: false });
  });

  it('moves the abandoned line to the end of the list', () => {
    const lines: T[] = [
      ['disk', 'A', 'size', '8'],
      ['disk', 'B', 'size', '8'],
      ['disk', 'C', 'size', '8'],
      ['disk', 'B', 'type', 'b'],
    ];
    const r = matchAll(
      [
        ['disk', '$x', 'size', '8'],
        ['disk', '$x', 'type', 'b'],
        ['disk', '$y', 'size', '8'],
      ],
      lines,
    );
    // A was tried for $x and moved last, so $y takes C, not A.
    expect(r.vars).toEqual({ x: 'B', y: 'C' });
  });

  it('backtracks through several abandoned candidates', () => {
    const lines: T[] = [
      ['disk', 'sda', 'size', '1000'],
      ['disk', 'sda', 'vendor', 'H'],
      ['disk', 'sdb', 'size', '1000'],
      ['disk', 'sdb', 'vendor', 'H'],
      ['disk', 'sdc', 'size', '1000'],
      ['disk', 'sdc', 'vendor', 'S'],
      ['disk', 'sdd', 'size', '1000'],
      ['disk', 'sdd', 'vendor', 'S'],
    ];
    const specs: T[] = [
      ['disk', '$d1', 'size', '1000'],
      ['disk', '$d1', 'vendor', 'S'],
      ['disk', '$d2', 'size', '1000'],
      ['disk', '$d2', 'vendor', 'S'],
      ['disk', '$d3', 'size', '1000'],
      ['disk', '$d4', 'size', '1000'],
    ];
    expect(matchAll(specs, lines).vars).toEqual({ d1: 'sdc', d2: 'sdd', d3: 'sda', d4: 'sdb' });
  });

  it('drops the stale $$ key eDeploy kept after a backtrack (decision 5)', () => {
    const r = matchAll(
      [
        ['disk', '$$disk', 'size', '8'],
        ['disk', '$$disk', 'type', 'b'],
      ],
      hw,
    );
    expect(r.vars).toEqual({ disk: 'vdb' });
    expect(r.cmdbVars).toEqual({ disk: 'vdb' });
  });

  describe(`stops at depth ${MAX_BACKTRACK_DEPTH}`, () => {
    // Candidate k (1-based) is reached at recursion level k-1.
    const chain = (n: number, good: number): T[] => [
      ...Array.from({ length: n }, (_, i): T => ['d', `d${i + 1}`, 'size', '8']),
      ['d', `d${good}`, 'type', 'b'],
    ];
    const specs: T[] = [
      ['d', '$x', 'size', '8'],
      ['d', '$x', 'type', 'b'],
    ];

    it('finds the 50th candidate', () => {
      expect(matchAll(specs, chain(60, 50)).vars).toEqual({ x: 'd50' });
    });

    it('does not reach the 51st', () => {
      expect(matchAll(specs, chain(60, 51))).toMatchObject({ matched: false, limitReached: false });
    });
  });

  it('gives up at the step limit on an explosive search and says so', () => {
    const lines: T[] = [
      ...Array.from({ length: 8 }, (_, i): T => ['disk', `sd${'abcdefgh'[i]}`, 'size', '1000']),
      ['network', 'eth0', 'serial', 'aa'],
    ];
    const specs: T[] = [
      ...Array.from({ length: 6 }, (_, i): T => ['disk', `$d${i + 1}`, 'size', '1000']),
      // Satisfiable alone, never with $d1 bound to a disk.
      ['network', '$d1', 'serial', '$mac'],
    ];
    expect(matchAll(specs, lines, { maxSteps: 20_000 })).toEqual({ matched: false, vars: {}, cmdbVars: {}, limitReached: true });
  });

  it('answers at once when a spec can match no line at all', () => {
    const lines: T[] = Array.from({ length: 8 }, (_, i): T => ['disk', `sd${'abcdefgh'[i]}`, 'size', '1000']);
    const specs: T[] = [...Array.from({ length: 8 }, (_, i): T => ['disk', `$d${i + 1}`, 'size', '1000']), ['system', 'product', 'vendor', 'kvm']];
    expect(matchAll(specs, lines, { maxSteps: 1000 })).toMatchObject({ matched: false, limitReached: false });
  });
});

describe('matchSpec', () => {
  const lines: T[] = [
    ['disk', 'sda', 'size', '100'],
    ['disk', 'sdb', 'size', '200'],
  ];

  it('returns the line a spec takes and the bindings, leaving the list alone', () => {
    expect(matchSpec(['disk', '$d', 'size', 'gt(150)'], lines)).toEqual({ index: 1, line: lines[1], bindings: { d: 'sdb' } });
    expect(lines).toHaveLength(2);
  });

  it('honours variables already bound', () => {
    expect(matchSpec(['disk', '$d', 'size', '$s'], lines, { d: 'sdb' })).toEqual({ index: 1, line: lines[1], bindings: { d: 'sdb', s: '200' } });
    expect(matchSpec(['disk', '$d', 'size', '100'], lines, { d: 'sdb' })).toBeNull();
  });

  it('prefers an exact line, binding nothing', () => {
    const l: T[] = [
      ['a', '1', 'k', 'v'],
      ['a', '$x', 'k', 'v'],
    ];
    expect(matchSpec(['a', '$x', 'k', 'v'], l)).toEqual({ index: 1, line: l[1], bindings: {} });
  });

  it('keeps $$ variables under their $ key, as during matching', () => {
    expect(matchSpec(['disk', '$$d', 'size', '100'], lines)?.bindings).toEqual({ $d: 'sda' });
  });
});

describe('agreement with the upstream algorithm', () => {
  interface Case {
    specs: T[];
    hw: T[];
    matched: boolean;
    vars: Record<string, string>;
    cmdbVars: Record<string, string>;
  }
  const cases = JSON.parse(readFileSync(new URL('../../test/fixtures/matching/upstream-match-cases.json', import.meta.url), 'utf8')) as Case[];

  it('has a corpus worth the name', () => {
    expect(cases.filter((c) => c.matched).length).toBeGreaterThanOrEqual(200);
    expect(cases.filter((c) => !c.matched).length).toBeGreaterThanOrEqual(100);
  });

  it('gives the answers eDeploy gives on 300 generated cases', () => {
    const wrong = cases.filter((c) => {
      const r = matchAll(c.specs, c.hw);
      return r.matched !== c.matched || JSON.stringify(sorted(r.vars)) !== JSON.stringify(sorted(c.vars)) || JSON.stringify(sorted(r.cmdbVars)) !== JSON.stringify(sorted(c.cmdbVars));
    });
    expect(wrong).toEqual([]);
  });

  function sorted(o: Record<string, string>): [string, string][] {
    return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
});

describe('matchAll on a HardwareIndex (one machine, many spec lists)', () => {
  const hw: HwTuple[] = [
    ['disk', 'sda', 'size', '300'],
    ['cpu', 'physical_0', 'cores', '8'],
    ['disk', 'sdb', 'size', '50'],
    ['network', 'eth0', 'serial', 'aa:bb'],
  ];
  const lists: string[][][] = [
    [['disk', '$d', 'size', 'gt(100)'], ['cpu', 'physical_0', 'cores', '$c']],
    [['disk', '$d', 'size', 'gt(100)'], ['disk', '$e', 'size', 'lt(100)']],
    [['$cat', 'eth0', 'serial', '$mac'], ['disk', 'sdc', 'size', '$s']],
    [['disk', '$d', 'size', 'gt(1000)']],
    [['$cat', '$id', 'size', 'lt(60)'], ['disk', '$d', 'size', 'gt(100)']],
  ];

  it('answers every list as the plain hardware list does, the index shared across them', () => {
    const index = new HardwareIndex(hw);
    for (const specs of lists) expect(matchAll(specs, index)).toEqual(matchAll(specs, hw));
    expect(lists.map((specs) => matchAll(specs, index).matched)).toEqual([true, true, false, false, true]);
  });
});
