import { describe, expect, it } from 'vitest';
import { compileSpecs, CMDB_EXHAUSTED_MESSAGE, CMDB_NO_MATCH_MESSAGE, type PyDict } from '../matching/index.js';
import type { HwTuple } from '../core/facts.js';
import { chooseEntry, freedData, noMatchMessage, selectProfileFor, type EntryState, type ProfileCandidate } from './allocation.js';

const entry = (position: number, data: PyDict, machineId: string | null = null): EntryState => ({ id: `e${position}`, position, data, original: data, machineId });
const hw: HwTuple[] = [
  ['system', 'product', 'serial', 'S1'],
  ['network', 'eth0', 'serial', 'aa:bb'],
];
const profile = (id: string, quota: number | null, spec: string[][]): ProfileCandidate => ({ id, name: id, quota, specs: compileSpecs(spec) });

describe('chooseEntry', () => {
  it('reuses the entry carrying the $$ variables, free or its own, never another machine\'s', () => {
    const entries = [entry(0, { serial: 'S1', hostname: 'a', used: 1 }, 'other'), entry(1, { serial: 'S1', hostname: 'b' })];
    const c = chooseEntry(entries, 'me', { serial: 'S1' }, { serial: 'S1' });
    expect(c.entry.position).toBe(1);
    expect(c.data).toEqual({ serial: 'S1', hostname: 'b', used: 1 });
    expect(() => chooseEntry(entries.slice(0, 1), 'me', { serial: 'S1' }, { serial: 'S1' })).toThrow(CMDB_NO_MATCH_MESSAGE);
  });

  it('takes the first free entry when nothing carries the variables, and says when none is left', () => {
    const entries = [entry(0, { hostname: 'a', used: 1 }, 'other'), entry(1, { hostname: 'b', used: 0 }), entry(2, { hostname: 'c' })];
    const c = chooseEntry(entries, 'me', { eth: 'eth0' }, {});
    expect([c.entry.position, c.reused, c.data]).toEqual([1, false, { eth: 'eth0', hostname: 'b', used: 1 }]);
    expect(() => chooseEntry([entries[0]!], 'me', { eth: 'eth0' }, {})).toThrow(CMDB_EXHAUSTED_MESSAGE);
    expect(() => chooseEntry([], 'me', {}, {})).toThrow(CMDB_EXHAUSTED_MESSAGE);
  });

  it('with no variables at all, keeps the entry the machine holds, else the first free one (not entry 0 for everybody)', () => {
    const entries = [entry(0, { hostname: 'a', used: 1 }, 'other'), entry(1, { hostname: 'b', used: 1 }), entry(2, { hostname: 'c' }), entry(3, { hostname: 'd', used: 1 }, 'me')];
    expect(chooseEntry(entries, 'me', {}, {}).entry.position).toBe(3);
    expect(chooseEntry(entries, 'new', {}, {}).entry.position).toBe(2);
  });

  it('frees an entry back to its original content without a used mark', () => {
    expect(freedData({ hostname: 'a', used: 1, ip: '10.0.0.1' })).toEqual({ hostname: 'a', ip: '10.0.0.1' });
  });
});

describe('selectProfileFor', () => {
  const any = [['system', 'product', 'serial', '$serial']];
  it('tries profiles in order, skips those without quota, and takes the quota of the winner', async () => {
    const taken: string[] = [];
    const profiles = [profile('none-left', 0, any), profile('no-match', 5, [['system', 'product', 'serial', 'S2']]), profile('winner', 1, any), profile('later', null, any)];
    const sel = await selectProfileFor(profiles, hw, { profileId: null, quotaHeld: false }, (p) => (taken.push(p.name), true));
    expect(sel).toMatchObject({ profile: { name: 'winner' }, quota: 'taken', vars: { serial: 'S1' }, tried: ['no-match', 'winner'] });
    expect(taken).toEqual(['winner']);
  });

  it('moves on when the quota cannot be taken, and keeps the quota a machine already holds', async () => {
    const profiles = [profile('raced', 1, any), profile('held', 0, any)];
    const lost = await selectProfileFor(profiles, hw, { profileId: 'held', quotaHeld: true }, () => false);
    expect(lost).toMatchObject({ profile: { name: 'held' }, quota: 'kept' });
    const none = await selectProfileFor(profiles, hw, { profileId: null, quotaHeld: false }, () => false);
    expect(none).toEqual({ profile: null, tried: ['raced'] });
  });

  it("uses eDeploy's messages when nothing matches", () => {
    expect(noMatchMessage([], 0)).toBeNull();
    expect(noMatchMessage([], 3)).toBe('No more role available in profiles');
    expect(noMatchMessage(['a', 'b'], 3)).toBe('Unable to match requirements on the following available roles in profiles: a, b');
  });
});
