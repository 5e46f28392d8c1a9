import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Agent, request } from 'undici';
import { postgresBackend } from '../test/support/backends.js';
import { ensureBuilt, freePort, startServe, type ServeProcess } from '../test/support/plinth-process.js';
import { startFarm, type Farm } from './support/redfish-farm.js';
import { cpuSeconds, loadAverage, machineInfo, record, table, today } from './support.js';

/**
 * Scale-out: 1, 2 and 3 `plinth serve` processes on one PostgreSQL database behind a
 * round-robin client (request i goes to controller i mod N). Three loads, each for D seconds
 * with C requests in flight:
 * - transitions: operator actions on machines with no appliance — inspect, then abort and
 *   retry in turn (each one lifecycle transition: row lock, run started or finished, event);
 * - boot scripts: iPXE's script request for known machines (identity resolution, the boot
 *   trace written);
 * - jobs: power-cycles through the API (`POST …/power`, which waits for its job) of machines
 *   behind simulated Redfish BMCs, one BMC each, answering in 1–5 ms: a provider job queued,
 *   claimed by any controller, run and finished.
 * Measured beside each figure: CPU seconds of every controller, of the PostgreSQL backends
 * serving this database and of the client, the machine's CPU busy share, and what the
 * database's active sessions waited on (pg_stat_activity sampled every 100 ms), so that a
 * ratio below N says where the time went.
 */
const QUICK = process.argv.includes('--quick');
const DURATION_S = Number(process.env.BENCH_DURATION ?? (QUICK ? 4 : 15));
const MACHINES = Number(process.env.BENCH_SCALEOUT_MACHINES ?? (QUICK ? 400 : 2000));
const JOB_MACHINES = Number(process.env.BENCH_SCALEOUT_JOB_MACHINES ?? (QUICK ? 64 : 200));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const PROCESSES = (process.env.BENCH_SCALEOUT_PROCESSES ?? '1,2,3').split(',').map(Number);
/** Rounds of 1, 2, 3 in turn, so that a change in the machine's other load falls on every count alike. */
const WARMUP_S = Math.max(2, DURATION_S / 2);
const ROUNDS = Number(process.env.BENCH_SCALEOUT_ROUNDS ?? (QUICK ? 1 : 3));

const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

interface Client {
  /** One request through controller `k`; resolves with its status. */
  call(k: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

function client(urls: string[], token: string): Client {
  const agents = urls.map(() => new Agent({ connections: CONNECTIONS, keepAliveTimeout: 60_000 }));
  return {
    async call(k, method, path, body) {
      const res = await request(urls[k]! + path, {
        dispatcher: agents[k]!,
        method: method as 'GET',
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
      return { status: res.statusCode, body: await res.body.text() };
    },
    close: () => Promise.all(agents.map((a) => a.close())).then(() => undefined),
  };
}

/** Busy and total jiffies of the whole machine (/proc/stat), to say how much of its CPU was in use. */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** CPU seconds of a process that may be gone by now (null). */
function tryCpu(pid: number): number | null {
  try {
    return cpuSeconds(pid);
  } catch {
    return null;
  }
}

interface Scenario {
  name: string;
  /** One unit of work by worker `w`; resolves with the number of units it counts (0 on a refusal). */
  step(w: number, via: number): Promise<number>;
}

interface Measured {
  round: number;
  processes: number;
  scenario: string;
  perSecond: number;
  errors: number;
  firstError: string;
  controllerCpu: number[];
  postgresCpu: number;
  clientCpu: number;
  machineBusy: number;
  waits: Record<string, number>;
  samples: number;
}

async function measure(round: number, n: number, serves: ServeProcess[], dbName: string, admin: pg.Client, s: Scenario, seconds = DURATION_S): Promise<Measured> {
  const backendPids = async () =>
    (await admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [dbName])).rows.map((r) => r.pid);
  const pids0 = await backendPids();
  const pg0 = new Map(pids0.map((p) => [p, tryCpu(p) ?? 0]));
  const c0 = serves.map((p) => cpuSeconds(p.child.pid!));
  const client0 = process.cpuUsage();
  const m0 = machineCpu();
  const waits: Record<string, number> = {};
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await admin.query<{ w: string; n: string }>(
        `select coalesce(wait_event_type || ':' || wait_event, 'CPU') as w, count(*) as n from pg_stat_activity
          where datname = $1 and state = 'active' and pid <> pg_backend_pid() group by 1`,
        [dbName],
      );
      samples++;
      for (const row of r.rows) waits[row.w] = (waits[row.w] ?? 0) + Number(row.n);
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  let done = 0;
  let errors = 0;
  let firstError = '';
  let rr = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, w) => {
      while (performance.now() < until) {
        const via = rr++ % n;
        try {
          const k = await s.step(w, via);
          if (k > 0) done += k;
          else errors++;
        } catch (e) {
          errors++;
          firstError ||= (e as Error).message;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;
  // A backend opened meanwhile counts from 0; one closed meanwhile is lost (the pools keep theirs open).
  const pids1 = await backendPids();
  const postgresCpu = pids1.reduce((sum, p) => sum + (tryCpu(p) ?? 0) - (pg0.get(p) ?? 0), 0);
  const m1 = machineCpu();
  const cu = process.cpuUsage(client0);
  return {
    round,
    processes: n,
    scenario: s.name,
    perSecond: s.name === 'idle' ? 0 : Math.round(done / elapsed),
    errors,
    firstError,
    controllerCpu: serves.map((p, i) => (cpuSeconds(p.child.pid!) - c0[i]!) / elapsed),
    postgresCpu: postgresCpu / elapsed,
    clientCpu: (cu.user + cu.system) / 1e6 / elapsed,
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    waits,
    samples,
  };
}

export async function run(): Promise<string> {
  ensureBuilt();
  const db = await postgresBackend.create();
  const dbName = new URL(db.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const farm: Farm = await startFarm({ bmcs: JOB_MACHINES, systemsPerBmc: 1, latencyMs: [1, 5] });
  const dirs: string[] = [];
  const secretKey = randomBytes(32).toString('base64');
  const results: Measured[] = [];
  let serves: ServeProcess[] = [];
  const startAll = async (n: number) => {
    for (let k = 0; k < n; k++) {
      if (!dirs[k]) {
        const d = mkdtempSync(join(tmpdir(), `plinth-bench-scaleout-${k}-`));
        mkdirSync(join(d, 'boot', 'installer'), { recursive: true });
        writeFileSync(join(d, 'boot', 'installer', 'vmlinuz'), 'kernel');
        writeFileSync(join(d, 'boot', 'installer', 'initrd.img'), 'initrd');
        dirs.push(d);
      }
      // One after the other: the first migrates the database and writes the admin token.
      serves.push(
        await startServe({
          PLINTH_DATA_DIR: dirs[k]!,
          PLINTH_DATABASE_URL: db.url,
          PLINTH_LISTEN: `127.0.0.1:${await freePort()}`,
          PLINTH_LOG_LEVEL: 'warn',
          PLINTH_PROVIDERS_SYNC_INTERVAL: '0',
          PLINTH_PROVIDERS_TIMEOUT: '30s',
          // Controllers sharing a database share its secret key (appliance credentials, run tickets).
          PLINTH_SECRET_KEY: secretKey,
        }),
      );
    }
  };
  try {
    await startAll(1);
    const token = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim();
    let c = client(serves.map((s) => s.url), token);
    const ok = async (r: Promise<{ status: number; body: string }>, what: string) => {
      const x = await r;
      if (x.status >= 300) throw new Error(`${what}: HTTP ${x.status} ${x.body}`);
      return JSON.parse(x.body);
    };
    console.log(`[scaleout] ${MACHINES} machines, ${JOB_MACHINES} behind simulated BMCs…`);
    // Setup, not a figure: the machines with no appliance, 100 a request (the bulk endpoint).
    const bulk = (machine: (i: number) => unknown) =>
      Promise.all(
        Array.from({ length: Math.ceil(MACHINES / 100) }, (_, k) =>
          ok(c.call(0, 'POST', '/api/v1/machines/bulk', { machines: Array.from({ length: Math.min(100, MACHINES - k * 100) }, (_, j) => machine(k * 100 + j)) }), 'bulk create'),
        ),
      );
    await bulk((i) => ({ name: `so-${i}`, identity: { macs: [mac(i)] } }));
    await bulk((i) => ({ name: `boot-${i}`, identity: { macs: [mac(MACHINES + i)] } }));
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < JOB_MACHINES; i = next++) {
          const a = await ok(c.call(0, 'POST', '/api/v1/appliances', { name: `bmc-${i}`, type: 'redfish', address: farm.bmcs[i]!.url, username: 'root', password: 'calvin' }), 'appliance');
          await ok(c.call(0, 'POST', '/api/v1/machines', { name: `job-${i}`, provider: { applianceId: a.id, ref: '/redfish/v1/Systems/s0' } }), 'create');
        }
      }),
    );
    // The boot-script machines: a second set, each booted once beforehand, which starts its
    // inspection; from then on its script is the installer's with a fresh run ticket.
    next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < MACHINES; i = next++) {
          const r = await c.call(0, 'GET', `/boot/machine.ipxe?mac=${mac(MACHINES + i)}`);
          if (!r.body.includes('plinth.token=')) throw new Error(`boot-${i}: no installer script:\n${r.body}`);
        }
      }),
    );
    await c.close();

    // Each worker owns its own machines, so no two requests race for one row: what is measured
    // is throughput, not conflicts (those are the integration tests' business).
    const perWorker = Math.floor(MACHINES / CONNECTIONS);
    const stateOf: string[] = Array.from({ length: MACHINES }, () => 'enrolled');
    const cursor = Array.from({ length: CONNECTIONS }, () => 0);
    const transitions: Scenario = {
      name: 'transitions',
      async step(w, via) {
        const i = w * perWorker + (cursor[w]!++ % perWorker);
        const action = stateOf[i] === 'enrolled' ? 'inspect' : stateOf[i] === 'inspecting' ? 'abort' : 'retry';
        const r = await c.call(via, 'POST', `/api/v1/machines/so-${i}/actions/${action}`, {});
        if (r.status !== 200) throw new Error(`${action} so-${i}: HTTP ${r.status} ${r.body}`);
        stateOf[i] = JSON.parse(r.body).machine.state;
        return 1;
      },
    };
    let bootN = 0;
    const bootScripts: Scenario = {
      name: 'boot scripts',
      async step(_w, via) {
        const i = MACHINES + (bootN++ % MACHINES);
        const r = await c.call(via, 'GET', `/boot/machine.ipxe?mac=${mac(i)}`);
        return r.status === 200 && r.body.includes('plinth.token=') ? 1 : 0;
      },
    };
    const jobCursor = Array.from({ length: CONNECTIONS }, (_, w) => w);
    const jobs: Scenario = {
      name: 'jobs',
      async step(w, via) {
        // Worker w cycles through machines w, w+C, w+2C…: one job per BMC at a time, as Plinth runs them.
        const i = jobCursor[w]! % JOB_MACHINES;
        jobCursor[w] = jobCursor[w]! + CONNECTIONS;
        const r = await c.call(via, 'POST', `/api/v1/machines/job-${i}/power`, { action: 'cycle', waitSeconds: 120 });
        if (r.status !== 200) throw new Error(`power job-${i}: HTTP ${r.status} ${r.body}`);
        return 1;
      },
    };

    // Nothing asked of the controllers: what their background loops (job claims, lease expiry,
    // deadline sweeps, webhooks) cost each of them and the database, per controller started.
    const idle: Scenario = {
      name: 'idle',
      async step() {
        await new Promise((r) => setTimeout(r, DURATION_S * 1000));
        return 1;
      },
    };

    for (let round = 1; round <= ROUNDS; round++) for (const n of PROCESSES) {
      for (const s of serves) await s.stop();
      serves = [];
      await startAll(n);
      c = client(serves.map((s) => s.url), token);
      for (const s of [transitions, bootScripts, jobs, idle]) {
        console.log(`[scaleout] round ${round}, ${n} controller(s): ${s.name} for ${DURATION_S} s…`);
        // Freshly started controllers compile their code as the first requests come (each its own
        // JIT): the same load first, unmeasured, so that N controllers are not charged N warm-ups.
        if (s !== idle) await measure(round, n, serves, dbName, admin, s, WARMUP_S);
        const m = await measure(round, n, serves, dbName, admin, s);
        console.log(`[scaleout]   ${m.perSecond}/s, errors ${m.errors}${m.firstError ? ` (first: ${m.firstError.slice(0, 200)})` : ''}, controllers ${m.controllerCpu.map((x) => x.toFixed(2)).join('+')} cores, postgres ${m.postgresCpu.toFixed(2)}, client ${m.clientCpu.toFixed(2)}, machine busy ${(m.machineBusy * 100).toFixed(0)}%, load ${loadAverage()}`);
        results.push(m);
      }
      await c.close();
    }
  } finally {
    for (const s of serves) await s.stop();
    await farm.close();
    await admin.end();
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }

  const load = loadAverage();
  const cpuOf = (r: Measured) => r.controllerCpu.reduce((a, b) => a + b, 0) + r.postgresCpu;
  const perCpu = (r: Measured) => r.perSecond / Math.max(0.01, cpuOf(r));
  const of = (n: number, s: string) => results.filter((r) => r.processes === n && r.scenario === s);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const summary = PROCESSES.flatMap((n) =>
    ['transitions', 'boot scripts', 'jobs', 'idle'].map((s) => {
      const best = Math.max(...of(n, s).map((r) => r.perSecond));
      const best1 = Math.max(...of(PROCESSES[0]!, s).map((r) => r.perSecond));
      const eff = mean(of(n, s).map(perCpu));
      const eff1 = mean(of(PROCESSES[0]!, s).map(perCpu));
      const busy = s !== 'idle';
      return {
        controllers: n,
        load: s,
        'best per second': busy ? best : '-',
        [`vs ${PROCESSES[0]}`]: busy ? `${(best / Math.max(1, best1)).toFixed(2)}×` : '-',
        'per CPU-second of controllers + PostgreSQL (mean)': busy ? Math.round(eff) : '-',
        [`efficiency vs ${PROCESSES[0]}`]: busy ? `${(eff / Math.max(0.01, eff1)).toFixed(2)}×` : '-',
        'cores used by controllers + PostgreSQL (mean)': mean(of(n, s).map(cpuOf)).toFixed(2),
      };
    }),
  );
  const topWaits = (w: Record<string, number>, samples: number) =>
    Object.entries(w)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${(v / samples).toFixed(1)}`)
      .join(', ');
  const rows = results.map((r) => ({
    round: r.round,
    controllers: r.processes,
    load: r.scenario,
    'per second': r.perSecond,
    errors: r.errors,
    'per CPU-second (controllers + PostgreSQL)': r.scenario === 'idle' ? '-' : Math.round(perCpu(r)),
    'controller CPU (cores)': r.controllerCpu.map((x) => x.toFixed(2)).join(' + '),
    'PostgreSQL CPU': r.postgresCpu.toFixed(2),
    'client CPU': r.clientCpu.toFixed(2),
    'machine busy': `${Math.round(r.machineBusy * 100)}%`,
    'active sessions waiting on (mean)': topWaits(r.waits, Math.max(1, r.samples)),
  }));
  const md = `# Scale-out: controllers on one PostgreSQL — ${today()}

${machineInfo()}; load average at the end ${load}. ${PROCESSES.join(', ')} \`plinth serve\` processes on one
PostgreSQL database (the local server, shared with other work on this machine), a round-robin client
with ${CONNECTIONS} requests in flight, ${DURATION_S} s per load after ${WARMUP_S} s of the same load unmeasured (each freshly started controller compiling its code), ${ROUNDS} round(s) of ${PROCESSES.join(', ')} in turn${QUICK ? ' (--quick)' : ''}. Transitions: operator
actions (inspect, abort, retry) on ${MACHINES} machines, each client worker on machines of its own.
Boot scripts: \`/boot/machine.ipxe\` by MAC for ${MACHINES} other machines, each inspecting (a network boot
started it beforehand), so every answer is the installer's script with a fresh run ticket. Jobs: power-cycles through the API,
each waiting for its provider job, of ${JOB_MACHINES} machines behind ${JOB_MACHINES} simulated Redfish BMCs
(1–5 ms per request), never two jobs for one BMC at once. Idle: nothing asked, what the controllers'
background loops (job claims and lease expiry, deadline sweeps, webhooks) cost.

"Best per second" is the best round (the one least disturbed by the machine's other work); "per CPU-second" is
the work done per second of CPU the controllers and PostgreSQL got, which says whether more controllers cost more
per unit of work (contention) or only need more CPU than the machine gives them. CPU columns are cores used on average during the load (1.00 = one core busy throughout); "machine busy"
is the share of both cores in use by anything. "Waiting on" is the mean number of this database's active
sessions per sample in each wait state (\`CPU\`: running, no wait event), from \`pg_stat_activity\` every 100 ms.

${table(summary, Object.keys(summary[0] ?? {}))}
Every measurement:

${table(rows, Object.keys(rows[0] ?? {}))}`;
  return record(QUICK ? 'scaleout-quick' : 'scaleout', md, { date: today(), machine: machineInfo(), loadAverage: load, durationS: DURATION_S, connections: CONNECTIONS, machines: MACHINES, jobMachines: JOB_MACHINES, results });
}

