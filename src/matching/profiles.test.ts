import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../core/facts.js';
import type { CmdbEntry } from './cmdb.js';
import { EdeployError } from './edeploy-errors.js';
import { expandModel } from './generate.js';
import { failProfile, quotaOf, resolveProfile, selectProfile, type StateEntry } from './profiles.js';
import type { SpecInput } from './spec-rules.js';

type T = HwTuple;

const vm: T[] = [
  ['disk', 'vda', 'size', '20'],
  ['network', 'eth0', 'serial', '52:54:00:00:00:01'],
  ['system', 'product', 'serial', 'TAG2'],
];

const specs: Record<string, SpecInput> = {
  big: [['disk', '$disk', 'size', 'gt(100)']],
  vm: [
    ['disk', '$disk', 'size', 'gt(4)'],
    ['network', '$eth', 'serial', '$mac'],
  ],
  tagged: [
    ['system', 'product', 'serial', '$$tag'],
    ['network', '$eth', 'serial', '$mac'],
  ],
  any: [],
};
const specsFor = (p: string): SpecInput | null => specs[p] ?? null;

function errorOf(fn: () => unknown): EdeployError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EdeployError) return e;
    throw e;
  }
  throw new Error('expected an EdeployError');
}

describe('quotaOf', () => {
  it("reads ints, numeric strings (with Python's int()) and '*'", () => {
    expect(quotaOf('*')).toEqual({ unlimited: true });
    expect(quotaOf(4)).toEqual({ unlimited: false, remaining: 4 });
    expect(quotaOf('4')).toEqual({ unlimited: false, remaining: 4 });
    expect(quotaOf(' 4 ')).toEqual({ unlimited: false, remaining: 4 });
    expect(quotaOf(2.9)).toEqual({ unlimited: false, remaining: 2 });
    expect(() => quotaOf('four', 'hp')).toThrow(/profile 'hp' has an invalid count 'four'/);
    expect(() => quotaOf('4.0')).toThrow(/invalid count/);
  });
});

describe('selectProfile', () => {
  it('takes the first profile in order whose specs match, decrementing its quota to an int', () => {
    const state: StateEntry[] = [
      { profile: 'big', count: 5 },
      { profile: 'vm', count: '4' },
      { profile: 'any', count: '*' },
    ];
    const m = selectProfile(state, vm, specsFor);
    expect(m).toMatchObject({ index: 1, profile: 'vm', vars: { disk: 'vda', eth: 'eth0', mac: '52:54:00:00:00:01' }, cmdbVars: {}, forced: false });
    expect(m.state).toEqual([
      { profile: 'big', count: 5 },
      { profile: 'vm', count: 3 },
      { profile: 'any', count: '*' },
    ]);
    expect(state[1]).toEqual({ profile: 'vm', count: '4' });
  });

  it('skips profiles whose quota is used up', () => {
    const m = selectProfile(
      [
        { profile: 'vm', count: 0 },
        { profile: 'any', count: '*' },
      ],
      vm,
      specsFor,
    );
    expect(m.profile).toBe('any');
    expect(m.state[1]).toEqual({ profile: 'any', count: '*' });
  });

  it('counts down to zero, then moves on', () => {
    let state: StateEntry[] = [
      { profile: 'vm', count: 2 },
      { profile: 'any', count: '*' },
    ];
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const m = selectProfile(state, vm, specsFor);
      picks.push(m.profile);
      state = m.state;
    }
    expect(picks).toEqual(['vm', 'vm', 'any', 'any']);
    expect(state).toEqual([
      { profile: 'vm', count: 0 },
      { profile: 'any', count: '*' },
    ]);
  });

  it('marks $$ matches as forced CMDB lookups', () => {
    expect(selectProfile([{ profile: 'tagged', count: 1 }], vm, specsFor)).toMatchObject({ forced: true, cmdbVars: { tag: 'TAG2' }, vars: { tag: 'TAG2', eth: 'eth0' } });
  });

  it('never matches a profile without specs', () => {
    const e = errorOf(() => selectProfile([{ profile: 'nospecs', count: 3 }], vm, specsFor, { configDir: '/etc/edeploy' }));
    expect(e.message).toBe('Unable to match requirements on the following available roles in /etc/edeploy: nospecs');
  });

  it("uses eDeploy's messages when nothing matches", () => {
    const e = errorOf(() =>
      selectProfile(
        [
          { profile: 'big', count: 1 },
          { profile: 'vm', count: 0 },
          { profile: 'tagged', count: '*' },
        ],
        [['disk', 'sda', 'size', '1']],
        specsFor,
        { configDir: '/cfg' },
      ),
    );
    expect(e.message).toBe('Unable to match requirements on the following available roles in /cfg: big, tagged');
    expect(e.kind).toBe('no-profile-matched');
    const none = errorOf(() => selectProfile([{ profile: 'vm', count: 0 }], vm, specsFor, { stateFile: '/cfg/state' }));
    expect(none.message).toBe('No more role available in /cfg/state');
    expect(none.kind).toBe('no-role-available');
  });
});

describe('failProfile', () => {
  it('gives one back to the first entry of that name', () => {
    const state: StateEntry[] = [
      { profile: 'vm', count: '0' },
      { profile: 'vm', count: 5 },
    ];
    expect(failProfile(state, 'vm')).toEqual({
      changed: true,
      state: [
        { profile: 'vm', count: 1 },
        { profile: 'vm', count: 5 },
      ],
    });
    expect(state[0]!.count).toBe('0');
  });

  it("leaves '*' and unknown profiles alone", () => {
    expect(failProfile([{ profile: 'any', count: '*' }], 'any').changed).toBe(false);
    expect(failProfile([{ profile: 'any', count: '*' }], 'nope').changed).toBe(false);
  });

  it('undoes a selection', () => {
    const start: StateEntry[] = [{ profile: 'vm', count: 3 }];
    const m = selectProfile(start, vm, specsFor);
    expect(failProfile(m.state, 'vm').state).toEqual([{ profile: 'vm', count: 3 }]);
  });
});

describe('resolveProfile', () => {
  const pools: Record<string, CmdbEntry[]> = {
    vm: expandModel({ ip: '192.168.122.2-3', hostname: 'node2-3' }),
    tagged: expandModel({ tag: ['TAG1', 'TAG2', 'TAG3'], ip: '192.168.122.3-5', hostname: 'host3-5' }),
    any: [],
  };
  const sources = { specs: specsFor, cmdb: (p: string) => pools[p] ?? null };

  it('allocates from the profile pool', () => {
    const r = resolveProfile([{ profile: 'vm', count: 2 }], vm, sources);
    expect(r.profile).toBe('vm');
    expect(r.vars).toEqual({ disk: 'vda', eth: 'eth0', mac: '52:54:00:00:00:01', ip: '192.168.122.2', hostname: 'node2', used: 1 });
    expect(r.cmdb).toMatchObject({ index: 0, reused: false });
    expect(r.cmdb!.entries[1]).toEqual({ ip: '192.168.122.3', hostname: 'node3' });
    expect(r.state).toEqual([{ profile: 'vm', count: 1 }]);
  });

  it('looks up by $$ variables', () => {
    expect(resolveProfile([{ profile: 'tagged', count: '*' }], vm, sources).vars).toMatchObject({ tag: 'TAG2', ip: '192.168.122.4', hostname: 'host4' });
  });

  it('has no pool for a profile without a CMDB or with an empty one', () => {
    const r = resolveProfile([{ profile: 'any', count: '*' }], vm, sources);
    expect(r).toEqual({ profile: 'any', vars: {}, state: [{ profile: 'any', count: '*' }], cmdb: null });
  });

  it('fails as a whole when the pool cannot serve the machine', () => {
    const other: T[] = [...vm.slice(0, 2), ['system', 'product', 'serial', 'TAG9']];
    expect(errorOf(() => resolveProfile([{ profile: 'tagged', count: 3 }], other, sources)).message).toBe('No entry matched in the CMDB, aborting.');
    const full = { specs: specsFor, cmdb: () => [{ ip: 'x', used: 1 }] };
    expect(errorOf(() => resolveProfile([{ profile: 'vm', count: 3 }], vm, full)).message).toBe('No more entry in the CMDB, aborting.');
  });
});
