import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../core/facts.js';
import { CMDB_EXHAUSTED_MESSAGE, CMDB_NO_MATCH_MESSAGE } from './edeploy-errors.js';
import { allocate, allocateSync, chooseEntry, freedData, noMatchMessage, type EngineProfile, type EntryState, type Holding, type Ledger } from './engine.js';
import { MemoryLedger } from './memory-ledger.js';
import type { PyDict } from './python-values.js';
import { compileSpecs } from './spec-rules.js';

const entry = (position: number, data: PyDict, machineId: string | null = null): EntryState => ({ id: `e${position}`, position, data, original: data, machineId });
const hw: HwTuple[] = [
  ['system', 'product', 'serial', 'S1'],
  ['network', 'eth0', 'serial', 'aa:bb'],
];
const profile = (id: string, quota: number | null, spec: string[][], poolId: string | null = null): EngineProfile => ({ id, name: id, quota, specs: compileSpecs(spec), poolId });
const newMachine = (id: string, holding: Holding = { profileId: null, quotaHeld: false }) => ({ id, hw, holding, entry: null });

/** A ledger over the quotas as read, whose takes are decided by `take`: another machine may have taken the last one. */
function racingLedger(take: (p: EngineProfile) => boolean): Ledger {
  return { remaining: (p) => p.quota, takeQuota: take, returnQuota: () => {}, entries: () => null, claimEntry: () => {}, freeEntry: () => {} };
}

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

  it("gives an anonymous machine (eDeploy's state-file mode, no holders recorded) eDeploy's rule unchanged", () => {
    const entries = [entry(0, { hostname: 'a', used: 1 }), entry(1, { hostname: 'b' })];
    expect(chooseEntry(entries, null, {}, {})).toMatchObject({ entry: { position: 0 }, reused: true });
    expect(chooseEntry(entries, 'me', {}, {})).toMatchObject({ entry: { position: 1 } });
  });

  it('frees an entry back to its original content without a used mark', () => {
    expect(freedData({ hostname: 'a', used: 1, ip: '10.0.0.1' })).toEqual({ hostname: 'a', ip: '10.0.0.1' });
  });
});

describe('allocate: choosing the profile', () => {
  const any = [['system', 'product', 'serial', '$serial']];
  it('tries profiles in order, skips those without quota, and takes the quota of the winner', async () => {
    const taken: string[] = [];
    const profiles = [profile('none-left', 0, any), profile('no-match', 5, [['system', 'product', 'serial', 'S2']]), profile('winner', 1, any), profile('later', null, any)];
    const sel = await allocate(newMachine('me'), profiles, racingLedger((p) => (taken.push(p.name), true)));
    expect(sel).toMatchObject({ profile: { name: 'winner' }, quota: 'taken', vars: { serial: 'S1' }, tried: ['no-match', 'winner'] });
    expect(taken).toEqual(['winner']);
  });

  it('moves on when the quota cannot be taken, and keeps the quota a machine already holds', async () => {
    const profiles = [profile('raced', 1, any), profile('held', 0, any)];
    const lost = await allocate(newMachine('me', { profileId: 'held', quotaHeld: true }), profiles, racingLedger(() => false));
    expect(lost).toMatchObject({ profile: { name: 'held' }, quota: 'kept' });
    const none = await allocate(newMachine('me'), profiles, racingLedger(() => false));
    expect(none).toEqual({ profile: null, tried: ['raced'] });
  });

  it("uses eDeploy's messages when nothing matches", () => {
    expect(noMatchMessage([], 0)).toBeNull();
    expect(noMatchMessage([], 3)).toBe('No more role available in profiles');
    expect(noMatchMessage(['a', 'b'], 3)).toBe('Unable to match requirements on the following available roles in profiles: a, b');
  });
});

describe('allocate: what a machine holds', () => {
  const any = [['system', 'product', 'serial', '$serial']];
  const pool = (): EntryState[] => [entry(0, { hostname: 'a' }), entry(1, { hostname: 'b' })];

  it('re-matched to another profile, a machine gives back the quota and the entry it held', () => {
    const pools = new Map([['p', pool()]]);
    const first = [profile('first', 1, any, 'p'), profile('second', 1, any)];
    const ledger = new MemoryLedger(first, (id) => pools.get(id));
    const a = allocateSync(newMachine('me'), first, ledger);
    expect(a).toMatchObject({ profile: { name: 'first' }, quota: 'taken', entry: { entry: { position: 0 }, data: { serial: 'S1', hostname: 'a', used: 1 } } });
    expect([ledger.remaining(first[0]!), pools.get('p')![0]!.machineId]).toEqual([0, 'me']);

    // The first profile no longer matches: the machine moves on and lets go of both.
    const again = [profile('first', 0, [['system', 'product', 'serial', 'S2']], 'p'), first[1]!];
    const b = allocateSync({ id: 'me', hw, holding: { profileId: 'first', quotaHeld: true }, entry: { id: 'e0', poolId: 'p' } }, again, ledger);
    expect(b).toMatchObject({ profile: { name: 'second' }, quota: 'taken', entry: null });
    expect([ledger.remaining(first[0]!), ledger.remaining(first[1]!)]).toEqual([1, 0]);
    expect(pools.get('p')![0]).toMatchObject({ machineId: null, data: { hostname: 'a' } });
  });

  it('an exhausted pool gives the quota back and leaves the machine holding nothing', () => {
    const full = [entry(0, { hostname: 'a', used: 1 }, 'other')];
    const profiles = [profile('pooled', 2, any, 'p')];
    const ledger = new MemoryLedger(profiles, () => full);
    const a = allocateSync(newMachine('me'), profiles, ledger);
    expect(a).toMatchObject({ profile: { name: 'pooled' }, entry: null, failure: { message: CMDB_EXHAUSTED_MESSAGE } });
    expect(ledger.remaining(profiles[0]!)).toBe(2);
    expect(full[0]!.machineId).toBe('other');
  });

  it('gives the same answers run synchronously and awaited', async () => {
    const run = () => {
      const profiles = [profile('one', 1, any, 'p'), profile('rest', null, any, 'p')];
      const pools = new Map([['p', pool()]]);
      return { profiles, ledger: new MemoryLedger(profiles, (id) => pools.get(id)) };
    };
    const s = run();
    const a = run();
    for (const id of ['m1', 'm2', 'm3']) {
      const sync = allocateSync(newMachine(id), s.profiles, s.ledger);
      const awaited = await allocate(newMachine(id), a.profiles, a.ledger);
      expect(awaited).toEqual(sync);
    }
    expect(s.ledger.entries('p')!.map((e) => e.machineId)).toEqual(['m1', 'm2']);
  });
});

describe('the engine stands alone', () => {
  it('imports neither the store nor the profiles service (they plug in through a ledger)', () => {
    const dir = import.meta.dirname;
    const offending = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/from '(\.\.\/(?:store|profiles)\/[^']*)'/g)].map((m) => `${f}: ${m[1]}`));
    expect(offending).toEqual([]);
  });
});
