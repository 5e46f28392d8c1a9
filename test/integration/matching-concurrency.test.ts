import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { backends } from '../support/backends.js';
import { ensureBuilt, freePort, startServe, type ServeProcess } from '../support/plinth-process.js';
import { Store } from '../../src/store/database.js';
import { CMDB_EXHAUSTED_MESSAGE, CMDB_NO_MATCH_MESSAGE } from '../../src/matching/index.js';
import { bladeFacts, bladeSerial, bootAndReport, fetchHttp, type BladeVariant, type Http } from './matching-support.js';

/**
 * A hundred machines inspected at once through two controller processes that share one
 * database, against profiles with small quotas and small pools. Whatever the interleaving,
 * the database must end with no entry given to two machines, no quota overdrawn, every
 * quota exactly consumed, and the eDeploy errors where pools or profiles ran out.
 *
 * Sized for a busy 2-core machine (other test files, PostgreSQL and both controllers share
 * it): every pool and quota still runs out mid-run with 16 requests in flight, which is the
 * race; more blades would only make the run longer, not the race harder.
 *
 * 100 blades, four hardware variants:
 * - 8 "Reserved" blades; profile reserved (quota 6) finds entries by `$$serial` in a pool
 *   listing 5 of their serials: 5 get their entry, 3 fail with eDeploy's "No entry
 *   matched" and give the quota back (1 left);
 * - 40 "A" blades (8 cores): compute-a (quota 12, pool of 20) takes 12; the 28 others fall
 *   through to generic-b;
 * - 40 "B" blades (10 cores): generic-b (unlimited, pool of 16) also takes them: of its 68
 *   candidates, 16 get an entry and 52 fail with "No more entry in the CMDB";
 * - 12 "Storage" blades: storage (quota 7, no pool) takes 7; 5 match nothing.
 * Then every machine is inspected again, all at once: each keeps exactly what it had (its
 * quota is not taken twice, its entry comes back to it) and the failures fail the same way.
 */
const PRODUCT = 'ProLiant BL460c Gen8 (641016-B21)';
const GROUPS: { count: number; variant: BladeVariant; kind: 'R' | 'A' | 'B' | 'S' }[] = [
  { count: 8, variant: { product: 'Reserved blade' }, kind: 'R' },
  { count: 40, variant: {}, kind: 'A' },
  { count: 40, variant: { cores: '10' }, kind: 'B' },
  { count: 12, variant: { product: 'Storage blade' }, kind: 'S' },
];
const PROCESSES = 2;
const IN_FLIGHT = 16;

interface Blade {
  i: number;
  kind: 'R' | 'A' | 'B' | 'S';
  variant: BladeVariant;
}

function blades(): Blade[] {
  const out: Blade[] = [];
  let i = 1;
  for (const g of GROUPS) for (let k = 0; k < g.count; k++) out.push({ i: i++, kind: g.kind, variant: g.variant });
  // Interleave the variants so every profile is contended throughout the run.
  return out.sort((a, b) => ((a.i * 7919) % 101) - ((b.i * 7919) % 101));
}

const reservedSerials = (all: Blade[]) =>
  all
    .filter((b) => b.kind === 'R')
    .map((b) => b.i)
    .sort((x, y) => x - y)
    .slice(0, 5);

describe.each(backends)('matching under concurrency: two controllers on one $name database', (backend) => {
  let db: Awaited<ReturnType<typeof backend.create>>;
  const serves: ServeProcess[] = [];
  const dirs: string[] = [];
  let token = '';
  let dbUrl = '';
  const all = blades();

  beforeAll(async () => {
    ensureBuilt();
    db = await backend.create();
    dbUrl = backend.name === 'postgres' ? db.url : join(db.dataDir, 'plinth.sqlite');
    for (let k = 0; k < PROCESSES; k++) {
      const dataDir = mkdtempSync(join(tmpdir(), `plinth-conc-${k}-`));
      dirs.push(dataDir);
      mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
      writeFileSync(join(dataDir, 'boot', 'installer', 'vmlinuz'), 'kernel');
      writeFileSync(join(dataDir, 'boot', 'installer', 'initrd.img'), 'initrd');
      // One after the other: the first migrates the database and writes the admin token.
      serves.push(
        await startServe({
          PLINTH_DATA_DIR: dataDir,
          PLINTH_DATABASE_URL: dbUrl,
          PLINTH_LISTEN: `127.0.0.1:${await freePort()}`,
          PLINTH_LOG_LEVEL: 'warn',
        }),
      );
    }
    token = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim();
  }, 120_000);

  afterAll(async () => {
    for (const s of serves) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await db?.drop();
  });

  it('gives no entry to two machines and overdraws no quota', async () => {
    const http: Http[] = serves.map((s) => fetchHttp(s.url));
    const reserved = reservedSerials(all);
    const setup = await http[0]!('POST', '/api/v1/profiles/apply', {
      pools: [
        { name: 'reserved', entries: reserved.map((i) => ({ serial: bladeSerial(i), hostname: `res-${i}` })) },
        { name: 'pool-a', generate: { hostname: 'a001-020', ip: '10.10.0.1-20' } },
        { name: 'pool-b', generate: { hostname: 'b001-016', ip: '10.11.0.1-16' } },
      ],
      profiles: [
        { name: 'reserved', quota: 6, pool: 'reserved', spec: [['system', 'product', 'name', 'Reserved blade'], ['system', 'product', 'serial', '$$serial']] },
        {
          name: 'compute-a',
          quota: 12,
          pool: 'pool-a',
          spec: [['system', 'product', 'name', PRODUCT], ['cpu', 'physical_0', 'cores', '8'], ['network', '$eth', 'serial', '$mac'], ['disk', '$disk', 'size', 'gt(100)']],
        },
        { name: 'generic-b', pool: 'pool-b', spec: [['system', 'product', 'name', PRODUCT], ['cpu', 'physical_0', 'cores', 'ge(8)'], ['network', '$eth', 'serial', '$mac']] },
        { name: 'storage', quota: 7, spec: [['system', 'product', 'name', 'Storage blade']] },
      ],
    }, token);
    expect(setup.status, setup.body).toBe(200);

    // Every blade boots, says hello and reports, through the controller its number picks.
    const inspectAll = async (again: boolean) => {
      let next = 0;
      const worker = async () => {
        for (;;) {
          const n = next++;
          if (n >= all.length) return;
          const b = all[n]!;
          const via = http[(n + (again ? 1 : 0)) % PROCESSES]!;
          if (again) {
            const m = JSON.parse((await via('GET', `/api/v1/machines?q=${bladeSerial(b.i)}`, undefined, token)).body).items[0];
            const r = await via('POST', `/api/v1/machines/${m.name}/actions/inspect`, {}, token);
            if (r.status !== 200) throw new Error(`inspect ${m.name}: HTTP ${r.status} ${r.body}`);
          }
          await bootAndReport(via, bladeFacts(b.i, b.variant));
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    };

    await inspectAll(false);
    const first = await checkDatabase(1);
    await inspectAll(true);
    const second = await checkDatabase(2);
    // Inspected again, every machine kept its profile, its entry and its quota, or failed the same way.
    expect(second).toEqual(first);
  }, 240_000);

  /** The invariants, read from the database; returns each machine's assignment. */
  async function checkDatabase(decisionsPerMachine: number): Promise<string[]> {
    const store = await Store.open({ url: dbUrl });
    try {
      const q = store.db;
      const machines = await q.selectFrom('machines').select(['id', 'serial', 'state', 'profile_id', 'pool_entry_id', 'match_error', 'match_vars', 'quota_held']).execute();
      const profiles = new Map((await q.selectFrom('profiles').selectAll().execute()).map((p) => [p.name, p]));
      const profileName = new Map([...profiles.values()].map((p) => [p.id, p.name]));
      const entries = await q.selectFrom('pool_entries').selectAll().execute();
      const entryById = new Map(entries.map((e) => [e.id, e]));

      expect(machines).toHaveLength(all.length);
      expect(machines.every((m) => m.state === 'available')).toBe(true);

      // No entry held twice, and holdings agree both ways (entry → machine, machine → entry).
      const heldEntries = entries.filter((e) => e.machine_id !== null);
      expect(new Set(heldEntries.map((e) => e.machine_id)).size).toBe(heldEntries.length);
      const pointing = machines.filter((m) => m.pool_entry_id !== null);
      expect(new Set(pointing.map((m) => m.pool_entry_id)).size).toBe(pointing.length);
      expect(pointing.map((m) => [m.id, entryById.get(m.pool_entry_id!)?.machine_id]).filter(([id, holder]) => id !== holder)).toEqual([]);
      expect(heldEntries.length).toBe(pointing.length);

      // Quotas: never negative, exactly consumed.
      for (const p of profiles.values()) expect(p.quota === null || Number(p.quota) >= 0).toBe(true);
      const held = (name: string) => machines.filter((m) => m.profile_id === profiles.get(name)!.id && m.quota_held === 1).length;
      const count = (name: string) => machines.filter((m) => m.profile_id === profiles.get(name)!.id).length;
      expect([Number(profiles.get('reserved')!.quota), held('reserved'), count('reserved')]).toEqual([1, 5, 5]);
      expect([Number(profiles.get('compute-a')!.quota), held('compute-a'), count('compute-a')]).toEqual([0, 12, 12]);
      expect([profiles.get('generic-b')!.quota, held('generic-b'), count('generic-b')]).toEqual([null, 0, 16]);
      expect([Number(profiles.get('storage')!.quota), held('storage'), count('storage')]).toEqual([0, 7, 7]);

      // Every machine of a pooled profile holds exactly one entry, from that profile's pool.
      for (const m of machines.filter((x) => x.profile_id !== null)) {
        const p = profiles.get(profileName.get(m.profile_id!)!)!;
        if (p.pool_id === null) expect(m.pool_entry_id).toBeNull();
        else expect(entryById.get(m.pool_entry_id!)?.pool_id).toBe(p.pool_id);
      }
      const bySerial = new Map(all.map((b) => [bladeSerial(b.i), b]));
      const kindOf = (m: (typeof machines)[number]) => bySerial.get(m.serial!)!.kind;
      // Reserved blades hold the entry carrying their serial.
      for (const m of machines.filter((x) => x.profile_id === profiles.get('reserved')!.id)) {
        const vars = JSON.parse(m.match_vars!);
        expect(vars).toMatchObject({ serial: m.serial, hostname: `res-${Number(m.serial!.slice(2))}` });
      }
      expect(machines.filter((m) => m.profile_id === profiles.get('compute-a')!.id).every((m) => kindOf(m) === 'A')).toBe(true);
      expect(machines.filter((m) => m.profile_id === profiles.get('storage')!.id).every((m) => kindOf(m) === 'S')).toBe(true);

      // The rest carry eDeploy's messages and no profile, no quota, no entry.
      const failed = machines.filter((m) => m.profile_id === null);
      expect(failed.every((m) => m.pool_entry_id === null && m.quota_held === 0 && m.match_error !== null)).toBe(true);
      const errors = (msg: string) => failed.filter((m) => m.match_error === msg);
      expect(errors(CMDB_NO_MATCH_MESSAGE).map(kindOf)).toEqual(Array(3).fill('R'));
      expect(errors(CMDB_EXHAUSTED_MESSAGE)).toHaveLength(52);
      expect(errors(CMDB_EXHAUSTED_MESSAGE).every((m) => kindOf(m) === 'A' || kindOf(m) === 'B')).toBe(true);
      const unmatched = failed.filter((m) => m.match_error!.startsWith('Unable to match requirements on the following available roles in profiles: '));
      expect(unmatched.map(kindOf)).toEqual(Array(5).fill('S'));
      expect(heldEntries.length).toBe(5 + 12 + 16);

      // One match decision recorded per machine and inspection.
      const decisions = await q
        .selectFrom('events')
        .select(['machine_id', sql<number>`count(*)`.as('n')])
        .where('action', 'in', ['match', 'match-failed'])
        .groupBy('machine_id')
        .execute();
      expect(decisions).toHaveLength(all.length);
      expect(decisions.every((d) => Number(d.n) === decisionsPerMachine)).toBe(true);
      // The roles eDeploy's message lists as available are read with the quotas; with two
      // controllers the other one can use up the storage quota between that read and this
      // blade's turn, so whether storage is listed depends on timing (seen once in CI on
      // PostgreSQL). Who failed and why is asserted above; the decisions must not change.
      const decision = (e: string | null) => (e ?? '').replace(/^(Unable to match requirements on the following available roles in profiles: ).*/, '$1…');
      return machines.map((m) => `${m.serial} ${m.profile_id ? profileName.get(m.profile_id) : '-'} ${m.pool_entry_id ?? '-'} ${m.quota_held} ${decision(m.match_error)}`).sort();
    } finally {
      await store.close();
    }
  }
});
