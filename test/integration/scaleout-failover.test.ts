import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgAvailable, postgresBackend } from '../support/backends.js';
import { ensureBuilt, freePort, startServe, type ServeProcess } from '../support/plinth-process.js';
import { Store } from '../../src/store/database.js';
import { isTransitional } from '../../src/core/states.js';
import { startFarm, type Farm } from '../../bench/support/redfish-farm.js';
import { bladeFacts, bladeMac, bladeSerial } from './matching-support.js';

/**
 * Three controller processes on one PostgreSQL database; a storm of machines behind
 * simulated Redfish BMCs sent to inspection through all three; one controller killed with
 * SIGKILL while it holds provider jobs. Every machine is simulated as hardware behaves: when
 * its BMC powers it on or resets it, it network-boots (boot script, agent hello, facts — each
 * call retried on another controller when the one it reached is gone, as the agent does).
 *
 * Sized for a busy 2-core machine: MACHINES (default 200, PLINTH_TEST_STORM_MACHINES to
 * change) on 20 BMCs answering in 100–400 ms, one job per BMC at a time, so the storm lasts long enough to kill a controller
 * in the middle of it with jobs in its hands; the whole file takes a few minutes at load 15–30.
 * Nothing waits on time: every wait is on a condition, with generous limits.
 *
 * Asserted afterwards, from the database and the API: every job the dead controller held was
 * taken over by a survivor after its lease and succeeded; no job failed or is left; every
 * machine is `available` with its facts, no deadline left, one run each; the pool and quota
 * were handed out exactly once; every event is numbered once and reached an SSE stream that
 * followed the storm on a survivor, in order.
 */
const MACHINES = Number(process.env.PLINTH_TEST_STORM_MACHINES ?? 200);
const BMCS = 20;
const PER_BMC = Math.ceil(MACHINES / BMCS);
const QUOTA = Math.floor(MACHINES * 0.4);
const POOL = Math.floor(MACHINES * 0.5);
const LEASE = '20s';
const LIMIT_MS = 15 * 60_000;

const until = async (what: string, cond: () => Promise<boolean>, limitMs = LIMIT_MS): Promise<void> => {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

describe.runIf(pgAvailable)('several controllers on one PostgreSQL, one killed with SIGKILL mid-storm', () => {
  let db: Awaited<ReturnType<typeof postgresBackend.create>>;
  let store: Store;
  let farm: Farm;
  const serves: ServeProcess[] = [];
  const dirs: string[] = [];
  const dead = new Set<number>();
  let token = '';
  /** Machine number by BMC index and system id. */
  const machineAt = new Map<string, number>();
  const boots = new Map<number, number>();
  const flowErrors: string[] = [];
  /** Agent calls refused, by machine and boot. */
  const refused: { i: number; n: number; why: string }[] = [];

  /** One HTTP call through a live controller, from `start` on; a controller that does not answer is skipped from then on. */
  async function call(start: number, method: string, path: string, body?: unknown, bearer = token): Promise<{ status: number; body: string; retried: boolean }> {
    let retried = false;
    for (let k = 0; ; k++) {
      const i = (start + k) % serves.length;
      if (dead.has(i)) continue;
      try {
        const headers: Record<string, string> = {};
        if (bearer) headers.authorization = `Bearer ${bearer}`;
        if (body !== undefined) headers['content-type'] = 'application/json';
        const r = await fetch(serves[i]!.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
        return { status: r.status, body: await r.text(), retried };
      } catch {
        // Connection refused or reset: that controller is gone; the call may or may not have been committed.
        if (serves[i]!.child.exitCode !== null || serves[i]!.child.signalCode !== null) dead.add(i);
        retried = true;
        if (k > 50) throw new Error(`${method} ${path}: no controller answers`);
      }
    }
  }

  /**
   * The machine boots: what iPXE and the agent do, through whichever controller answers. A
   * later reset cuts this boot short, as it does on hardware: its calls stop (one already sent
   * still arrives).
   */
  async function boot(i: number): Promise<void> {
    const n = (boots.get(i) ?? 0) + 1;
    boots.set(i, n);
    const cut = () => boots.get(i) !== n;
    const facts = bladeFacts(i);
    const q = new URLSearchParams({ serial: bladeSerial(i), manufacturer: 'HP', mac: bladeMac(i) });
    const script = await call(i, 'GET', `/boot/machine.ipxe?${q}`, undefined, '');
    const ticket = /plinth\.token=(\S+)/.exec(script.body)?.[1];
    // No ticket: nothing for it to run (its run is held by the agent of an earlier boot, or over); it boots its disk.
    if (!ticket || cut()) return;
    const hello = await call(i + 1, 'POST', '/agent/v1/hello', { agentVersion: 'test' }, ticket);
    if (cut()) return;
    // Refused: its ticket was superseded by a reset on its way (checked at the end: a later boot cut this one).
    if (hello.status !== 200) return void refused.push({ i, n, why: `hello HTTP ${hello.status} ${hello.body}` });
    const done = await call(i + 2, 'POST', '/agent/v1/facts', facts, ticket);
    // A report the dead controller committed before its answer was lost is refused when sent again: the run is over.
    if (done.status !== 200 && !done.retried) refused.push({ i, n, why: `facts HTTP ${done.status} ${done.body}` });
  }

  beforeAll(async () => {
    ensureBuilt();
    db = await postgresBackend.create();
    store = await Store.open({ url: db.url });
    farm = await startFarm({
      bmcs: BMCS,
      systemsPerBmc: PER_BMC,
      latencyMs: [100, 400],
      onBoot: (b, s) => {
        const i = machineAt.get(`${b}/${s}`);
        if (i !== undefined) void boot(i).catch((e) => flowErrors.push(`machine ${i}: ${(e as Error).message}`));
      },
    });
    const secretKey = randomBytes(32).toString('base64');
    for (let k = 0; k < 3; k++) {
      const dataDir = mkdtempSync(join(tmpdir(), `plinth-failover-${k}-`));
      dirs.push(dataDir);
      mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
      writeFileSync(join(dataDir, 'boot', 'installer', 'vmlinuz'), 'kernel');
      writeFileSync(join(dataDir, 'boot', 'installer', 'initrd.img'), 'initrd');
      // One after the other: the first migrates the database and writes the admin token.
      serves.push(
        await startServe({
          PLINTH_DATA_DIR: dataDir,
          PLINTH_DATABASE_URL: db.url,
          PLINTH_LISTEN: `127.0.0.1:${await freePort()}`,
          PLINTH_LOG_LEVEL: 'warn',
          PLINTH_SECRET_KEY: secretKey,
          PLINTH_PROVIDERS_LEASE: LEASE,
          PLINTH_PROVIDERS_SYNC_INTERVAL: '0',
          PLINTH_PROVIDERS_TIMEOUT: '60s',
        }),
      );
    }
    token = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim();
  }, 180_000);

  afterAll(async () => {
    for (const s of serves) await s.stop();
    await farm?.close();
    await store?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await db?.drop();
  });

  it('loses nothing, takes over every job the dead one held after its lease, hands nothing out twice', async () => {
    const ok = async (r: Promise<{ status: number; body: string }>, what: string) => {
      const x = await r;
      if (x.status >= 300) throw new Error(`${what}: HTTP ${x.status} ${x.body}`);
      return JSON.parse(x.body);
    };
    await ok(
      call(0, 'POST', '/api/v1/profiles/apply', {
        pools: [{ name: 'storm', generate: { hostname: `n001-${String(POOL).padStart(3, '0')}`, ip: `10.40.0.1-${POOL}` } }],
        profiles: [{ name: 'compute', quota: QUOTA, pool: 'storm', spec: [['system', 'product', 'name', 'ProLiant BL460c Gen8 (641016-B21)'], ['network', '$eth', 'serial', '$mac']] }],
      }),
      'profiles',
    );
    const names: string[] = [];
    for (let b = 0; b < BMCS; b++) {
      const a = await ok(call(0, 'POST', '/api/v1/appliances', { name: `bmc-${b}`, type: 'redfish', address: farm.bmcs[b]!.url, username: 'root', password: 'calvin' }), 'appliance');
      for (let s = 0; s < PER_BMC; s++) {
        const i = b * PER_BMC + s + 1;
        if (i > MACHINES) break;
        machineAt.set(`${b}/s${s}`, i);
        const name = `storm-${i}`;
        await ok(
          call(i, 'POST', '/api/v1/machines', { name, identity: { serial: bladeSerial(i), manufacturer: 'HP', macs: [bladeMac(i)] }, provider: { applianceId: a.id, ref: `/redfish/v1/Systems/s${s}` } }),
          'machine',
        );
        names.push(name);
      }
    }

    // An SSE stream on controller 0, which survives, follows every event from the start.
    const streamed: number[] = [];
    const sse = new AbortController();
    const following = (async () => {
      const r = await fetch(`${serves[0]!.url}/api/v1/events/stream?after=0`, { headers: { authorization: `Bearer ${token}` }, signal: sse.signal });
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const id = /^id: (\d+)$/m.exec(buf.slice(0, end))?.[1];
          if (id) streamed.push(Number(id));
          buf = buf.slice(end + 2);
        }
      }
    })().catch((e) => {
      if (!sse.signal.aborted) throw e;
    });

    // The victim: controller 2, killed mid-storm (a tenth of the machines done, jobs still queued) while it holds running jobs.
    const victim = serves[2]!;
    const victimClaims = `controller:%:${victim.child.pid}:%`;
    const heldAtKill: { id: string; lease_until: string | null }[] = [];
    const killer = (async () => {
      await until('a tenth of the machines available while jobs are queued and controller 2 holds running ones', async () => {
        const available = await store.db.selectFrom('machines').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'available').executeTakeFirstOrThrow();
        if (Number(available.n) < MACHINES / 10) return false;
        const queued = await store.db.selectFrom('provider_jobs').select('id').where('status', '=', 'queued').limit(1).execute();
        if (queued.length === 0) throw new Error('the storm ended before controller 2 could be killed in the middle of it');
        const held = await store.db.selectFrom('provider_jobs').select('id').where('status', '=', 'running').where('claimed_by', 'like', victimClaims).execute();
        return held.length > 0;
      });
      victim.child.kill('SIGKILL');
      await new Promise((r) => victim.child.once('exit', r));
      dead.add(2);
      // Read after its death: nothing it did can change these rows any more.
      heldAtKill.push(...(await store.db.selectFrom('provider_jobs').select(['id', 'lease_until']).where('status', '=', 'running').where('claimed_by', 'like', victimClaims).execute()));
    })();

    // The storm: every machine sent to inspection, round-robin over the controllers.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let k = next++; k < names.length; k = next++) {
          const r = await call(k, 'POST', `/api/v1/machines/${names[k]}/actions/inspect`, {});
          // Sent again after a controller died with it: the first may have been committed.
          if (r.status !== 200 && !(r.retried && r.status === 409)) throw new Error(`inspect ${names[k]}: HTTP ${r.status} ${r.body}`);
        }
      }),
    );
    await killer;
    expect(heldAtKill.length).toBeGreaterThan(0);
    console.log(`[failover] controller 2 killed holding ${heldAtKill.length} running job(s)`);

    await until('every machine out of its transitional state and every job finished', async () => {
      const busy = await store.db.selectFrom('machines').select('state').execute();
      const jobs = await store.db.selectFrom('provider_jobs').select('id').where('status', 'in', ['queued', 'running']).limit(1).execute();
      return jobs.length === 0 && busy.every((m) => !isTransitional(m.state as never));
    });

    // Every job the dead controller held was taken over after its lease, by a survivor, and succeeded.
    const taken = await store.db.selectFrom('provider_jobs').selectAll().where('id', 'in', heldAtKill.map((j) => j.id)).execute();
    for (const j of taken) {
      const before = heldAtKill.find((h) => h.id === j.id)!;
      expect({ id: j.id, status: j.status, byVictim: j.claimed_by?.includes(`:${victim.child.pid}:`) }).toEqual({ id: j.id, status: 'succeeded', byVictim: false });
      expect(Number(j.attempts)).toBeGreaterThanOrEqual(2);
      expect(j.finished_at! > before.lease_until!).toBe(true);
    }
    const failedJobs = await store.db.selectFrom('provider_jobs').select(['id', 'kind', 'error']).where('status', '=', 'failed').execute();
    expect(failedJobs).toEqual([]);

    // Every machine ended available, with its facts, no deadline, one inspection run that succeeded.
    const machines = await store.db.selectFrom('machines').select(['id', 'name', 'state', 'state_deadline', 'facts', 'profile_id', 'pool_entry_id', 'quota_held', 'last_error']).execute();
    expect(machines).toHaveLength(MACHINES);
    expect(machines.filter((m) => m.state !== 'available').map((m) => `${m.name}: ${m.state} ${m.last_error}`)).toEqual([]);
    expect(machines.filter((m) => m.state_deadline !== null || m.facts === null).map((m) => m.name)).toEqual([]);
    const runs = await store.db.selectFrom('runs').select(['machine_id', 'status']).execute();
    expect(runs).toHaveLength(MACHINES);
    expect(new Set(runs.map((r) => r.machine_id)).size).toBe(MACHINES);
    expect(runs.filter((r) => r.status !== 'succeeded')).toEqual([]);
    expect(flowErrors).toEqual([]);
    // An agent was refused only when a later reset had re-armed its run: that boot was cut short, and a later one did the work.
    expect(refused.filter((r) => boots.get(r.i) === r.n).map((r) => `machine ${r.i} boot ${r.n}: ${r.why}`)).toEqual([]);
    const rebooted = [...boots.values()].filter((n) => n > 1).length;

    // The quota and the pool: handed out exactly once.
    const profile = await store.db.selectFrom('profiles').selectAll().where('name', '=', 'compute').executeTakeFirstOrThrow();
    expect(Number(profile.quota)).toBe(0);
    const holders = machines.filter((m) => m.profile_id === profile.id);
    expect(holders).toHaveLength(QUOTA);
    expect(holders.filter((m) => Number(m.quota_held) !== 1)).toEqual([]);
    const entries = await store.db.selectFrom('pool_entries').select(['id', 'machine_id']).execute();
    const held = entries.filter((e) => e.machine_id !== null);
    expect(held).toHaveLength(QUOTA);
    expect(new Set(held.map((e) => e.machine_id)).size).toBe(QUOTA);
    expect(new Set(holders.map((m) => m.pool_entry_id)).size).toBe(QUOTA);
    for (const m of holders) expect(held.find((e) => e.id === m.pool_entry_id)?.machine_id).toBe(m.id);

    // Events: each transition recorded once; every event numbered once and streamed, in order.
    const events = await store.db.selectFrom('events').select(['seq', 'machine_id', 'action', 'to_state']).where('type', '=', 'machine.transition').execute();
    for (const m of machines) {
      const mine = events.filter((e) => e.machine_id === m.id).map((e) => `${e.action}→${e.to_state}`);
      expect([m.name, mine.filter((a) => a === 'inspect→inspecting').length, mine.filter((a) => a.endsWith('→available')).length]).toEqual([m.name, 1, 1]);
    }
    await until('every event numbered and streamed', async () => {
      const all = await store.db.selectFrom('events').select('seq').execute();
      return all.every((e) => e.seq !== null) && streamed.length >= all.length;
    }, 120_000);
    const seqs = (await store.db.selectFrom('events').select('seq').execute()).map((e) => Number(e.seq)).sort((x, y) => x - y);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(streamed).toEqual(seqs);
    sse.abort();
    await following;
    console.log(`[failover] ${MACHINES} machines, ${heldAtKill.length} jobs taken over, ${rebooted} machine(s) booted more than once, ${refused.length} agent call(s) refused on a superseded ticket, ${seqs.length} events streamed`);
  }, LIMIT_MS * 2);
});
