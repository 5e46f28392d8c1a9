import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateEntry, entryIncludes, isEntryUsed, type CmdbEntry } from './cmdb.js';
import { CMDB_EXHAUSTED_MESSAGE, CMDB_NO_MATCH_MESSAGE, EdeployError } from './edeploy-errors.js';
import { expandModel } from './generate.js';

const pool = (): CmdbEntry[] => [
  { ip: '192.168.122.3', hostname: 'host03' },
  { ip: '192.168.122.4', hostname: 'host04' },
  { ip: '192.168.122.5', hostname: 'host05' },
];

function errorOf(fn: () => unknown): EdeployError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EdeployError) return e;
    throw e;
  }
  throw new Error('expected an EdeployError');
}

describe('allocateEntry', () => {
  const machine = { disk: 'vda', eth: 'eth0', mac: '52:54:00:88:17:3c' };

  it('takes the first free entry and merges it with the machine, as the README shows', () => {
    const entries = pool();
    const before = JSON.stringify(entries);
    const a = allocateEntry(entries, machine);
    expect(a.index).toBe(0);
    expect(a.reused).toBe(false);
    expect(a.vars).toEqual({ disk: 'vda', eth: 'eth0', mac: '52:54:00:88:17:3c', ip: '192.168.122.3', hostname: 'host03', used: 1 });
    // The machine's keys first, then the entry's, then used.
    expect(Object.keys(a.vars)).toEqual(['disk', 'eth', 'mac', 'ip', 'hostname', 'used']);
    expect(a.entries[0]).toEqual(a.vars);
    expect(a.entries.slice(1)).toEqual(pool().slice(1));
    expect(JSON.stringify(entries)).toBe(before);
  });

  it('gives a reinstalled machine its old entry back, used or not', () => {
    const first = allocateEntry(pool(), machine);
    const second = allocateEntry(first.entries, { ...machine });
    expect(second.index).toBe(0);
    expect(second.reused).toBe(true);
    const other = allocateEntry(first.entries, { ...machine, mac: '52:54:00:00:00:01' });
    expect(other.index).toBe(1);
  });

  it('lets detected values overwrite stored ones', () => {
    const a = allocateEntry([{ ip: '10.0.0.1', disk: 'sdz' }], { disk: 'vda' });
    expect(a.vars).toEqual({ disk: 'vda', ip: '10.0.0.1', used: 1 });
  });

  it('skips used entries when looking for a free one', () => {
    const entries: CmdbEntry[] = [{ ip: 'a', used: 1 }, { ip: 'b', used: 1 }, { ip: 'c' }];
    expect(allocateEntry(entries, machine).index).toBe(2);
  });

  it('treats used: 0 as free (decision 7)', () => {
    expect(isEntryUsed({ used: 0 })).toBe(false);
    expect(isEntryUsed({ used: false })).toBe(false);
    expect(isEntryUsed({ used: '0' })).toBe(false);
    expect(isEntryUsed({})).toBe(false);
    expect(isEntryUsed({ used: 1 })).toBe(true);
    expect(isEntryUsed({ used: true })).toBe(true);
    expect(allocateEntry([{ ip: 'a', used: 1 }, { ip: 'b', used: 0 }], machine)).toMatchObject({ index: 1, vars: { ip: 'b', used: 1 } });
  });

  it("says eDeploy's 'No more entry' when every entry is used", () => {
    const e = errorOf(() => allocateEntry([{ ip: 'a', used: 1 }], machine));
    expect(e.message).toBe(CMDB_EXHAUSTED_MESSAGE);
    expect(e.message).toBe('No more entry in the CMDB, aborting.');
    expect(e.kind).toBe('cmdb-exhausted');
  });

  describe('with $$ variables (forced lookup)', () => {
    const tagged = expandModel({ tag: ['TAG1', 'TAG2', 'TAG3'], ip: '192.168.122.3-5', hostname: 'host3-5' });

    it('finds the entry carrying them, whatever its place', () => {
      const a = allocateEntry(tagged, { tag: 'TAG2', eth: 'eth0', mac: 'm2' }, { tag: 'TAG2' });
      expect(a).toMatchObject({ index: 1, reused: true, vars: { tag: 'TAG2', eth: 'eth0', mac: 'm2', ip: '192.168.122.4', hostname: 'host4', used: 1 } });
    });

    it('finds it again when already used', () => {
      const a = allocateEntry(tagged, { tag: 'TAG3', mac: 'm3' }, { tag: 'TAG3' });
      const b = allocateEntry(a.entries, { tag: 'TAG3', mac: 'new-board' }, { tag: 'TAG3' });
      expect(b.index).toBe(2);
      expect(b.vars.mac).toBe('new-board');
    });

    it("never falls back to a free entry: eDeploy's 'No entry matched'", () => {
      const e = errorOf(() => allocateEntry(tagged, { tag: 'TAG9' }, { tag: 'TAG9' }));
      expect(e.message).toBe(CMDB_NO_MATCH_MESSAGE);
      expect(e.message).toBe('No entry matched in the CMDB, aborting.');
      expect(e.kind).toBe('cmdb-no-match');
    });
  });

  it('compares a detected string with a number stored by older eDeploy by its string form (decision 8)', () => {
    expect(entryIncludes({ 'ipmi-channel': '2' }, { 'ipmi-channel': 2 })).toBe(true);
    expect(entryIncludes({ 'ipmi-channel': '2' }, { 'ipmi-channel': 3 })).toBe(false);
    expect(entryIncludes({ a: '1' }, {})).toBe(false);
    expect(entryIncludes({}, { a: 1 })).toBe(true);
  });

  it('gives every machine the first entry when the specs bind no variable, as eDeploy did', () => {
    const a = allocateEntry(pool(), {});
    const b = allocateEntry(a.entries, {});
    expect([a.index, b.index]).toEqual([0, 0]);
  });
});

describe('allocation properties', () => {
  const mac = fc.integer({ min: 0, max: 40 }).map((n) => `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`);
  const machine = fc.record({ mac, disk: fc.constantFrom('sda', 'vda', 'nvme0n1'), eth: fc.constantFrom('eth0', 'eno1') });

  it('never gives one entry to two machines, and gives a machine back its entry', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(machine, { maxLength: 30 }), (size, arrivals) => {
        let entries = expandModel({ ip: `10.0.0.1-${size}`, hostname: `n1-${size}` });
        const owner = new Map<number, string>();
        const entryOf = new Map<string, number>();
        for (const m of arrivals) {
          const key = JSON.stringify(m);
          try {
            const a = allocateEntry(entries, m);
            entries = a.entries;
            const holder = owner.get(a.index);
            expect(holder === undefined || holder === m.mac).toBe(true);
            owner.set(a.index, m.mac);
            // The same machine reporting the same hardware gets the same entry.
            if (entryOf.has(key)) expect(a).toMatchObject({ index: entryOf.get(key), reused: true });
            entryOf.set(key, a.index);
          } catch (e) {
            expect(e).toBeInstanceOf(EdeployError);
            expect((e as EdeployError).message).toBe(CMDB_EXHAUSTED_MESSAGE);
            expect(entryOf.has(key)).toBe(false);
            expect(entries.every(isEntryUsed)).toBe(true);
          }
        }
        expect(entries.filter(isEntryUsed)).toHaveLength(owner.size);
      }),
      { numRuns: 150 },
    );
  });

  it('reallocating the same machine is stable', () => {
    fc.assert(
      fc.property(fc.array(machine, { minLength: 1, maxLength: 10 }), fc.nat(), (arrivals, pick) => {
        let entries = expandModel({ ip: '10.0.0.1-20' });
        const index = new Map<string, number>();
        for (const m of arrivals) {
          const a = allocateEntry(entries, m);
          entries = a.entries;
          index.set(JSON.stringify(m), a.index);
        }
        const again = arrivals[pick % arrivals.length]!;
        expect(allocateEntry(entries, { ...again }).index).toBe(index.get(JSON.stringify(again)));
      }),
      { numRuns: 150 },
    );
  });

  it('reuse by $$ variables is stable and keeps distinct tags apart', () => {
    const tags = ['T0', 'T1', 'T2', 'T3', 'T4', 'T5'];
    fc.assert(
      fc.property(fc.array(fc.record({ tag: fc.constantFrom(...tags), mac, disk: fc.constantFrom('sda', 'vda') }), { maxLength: 40 }), (arrivals) => {
        let entries = expandModel({ tag: tags, ip: '10.1.0.1-6' });
        const byTag = new Map<string, number>();
        for (const m of arrivals) {
          const a = allocateEntry(entries, m, { tag: m.tag });
          entries = a.entries;
          expect(entries[a.index]!.tag).toBe(m.tag);
          expect(a.vars.ip).toBe(`10.1.0.${tags.indexOf(m.tag) + 1}`);
          if (byTag.has(m.tag)) expect(a.index).toBe(byTag.get(m.tag));
          byTag.set(m.tag, a.index);
        }
        expect(new Set(byTag.values()).size).toBe(byTag.size);
      }),
      { numRuns: 150 },
    );
  });
});
