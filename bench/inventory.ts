import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { Store } from '../src/store/database.js';
import type { MachinesTable } from '../src/store/schema.js';
import { postgresBackend } from '../test/support/backends.js';
import { rawEnrolRate } from './support/raw-enrol.js';
import { rawPageCpuMs } from './support/raw-page.js';
import { ensureBuilt, freePort, startServe, type ServeProcess } from '../test/support/plinth-process.js';
import { cpuProfArgs, cpuSeconds, load, loadAverage, machineInfo, percentile, record, rssMiB, table, today, type LoadResult } from './support.js';

/**
 * Inventory at scale: enrol N machines through the API, give each a realistic facts
 * document, then measure list, filter, search, deep pages and single gets under concurrent
 * load, on SQLite and on PostgreSQL. The controller is a separate process so its memory is
 * its own; the load generator shares the machine's cores with it.
 */
const N = Number(process.env.BENCH_MACHINES ?? 100_000);
/** How many of the N are enrolled through the API (the enrolment figure); the rest are written straight to the database. */
const API_ENROL = Math.min(N, Number(process.env.BENCH_API_ENROL ?? N));
/** How many more are enrolled through the bulk endpoint, BULK_BATCH a request (the rack an operator posts). */
const BULK_ENROL = Math.min(N - API_ENROL, Number(process.env.BENCH_BULK_ENROL ?? 5 * API_ENROL));
const BULK_BATCH = 100;
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

function factsFor(i: number) {
  const disks = [{ name: 'sda', sizeBytes: 480_103_981_056, model: 'SAMSUNG MZ7LH480', serial: `S4${i}`, wwn: `0x5002538e${i.toString(16).padStart(8, '0')}`, rotational: false }];
  if (i % 3 === 0) disks.push({ name: 'sdb', sizeBytes: 4_000_787_030_016, model: 'ST4000NM0035', serial: `ZC1${i}`, wwn: `0x5000c500${i.toString(16).padStart(8, '0')}`, rotational: true });
  const mac = (n: number) => `0c:c4:7a:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${((i + n) & 255).toString(16).padStart(2, '0')}`;
  const nics = [0, 1].map((n) => ({ name: `eno${n + 1}`, mac: mac(n), driver: 'ixgbe', speedMbps: 10000, link: n === 0, ipv4: n === 0 ? [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] : [], ipv6: [] }));
  const hw: [string, string, string, string][] = [
    ['system', 'product', 'vendor', 'Supermicro'],
    ['system', 'product', 'name', 'SYS-1029P-WTR'],
    ['system', 'product', 'serial', `S${String(i).padStart(9, '0')}`],
    ['cpu', 'physical', 'number', '2'],
    ['cpu', 'logical', 'number', '48'],
    ['memory', 'total', 'size', String(192 * 2 ** 30)],
    ...disks.flatMap((d) => [
      ['disk', d.name, 'size', String(Math.round(d.sizeBytes / 1e9))],
      ['disk', d.name, 'model', d.model],
      ['disk', d.name, 'serial', d.serial],
      ['disk', d.name, 'rotational', d.rotational ? '1' : '0'],
    ] as [string, string, string, string][]),
    ...nics.flatMap((n) => [
      ['network', n.name, 'serial', n.mac],
      ['network', n.name, 'driver', n.driver],
      ['network', n.name, 'link', n.link ? 'yes' : 'no'],
    ] as [string, string, string, string][]),
  ];
  return {
    system: { uuid: null, serial: `S${String(i).padStart(9, '0')}`, assetTag: null, manufacturer: 'Supermicro', productName: 'SYS-1029P-WTR' },
    cpu: { architecture: 'x86_64', model: 'Intel(R) Xeon(R) Gold 6136 CPU @ 3.00GHz', sockets: 2, cores: 24, threads: 48 },
    memory: { totalBytes: 192 * 2 ** 30, source: 'smbios' },
    disks,
    nics,
    firmware: { bootMode: 'uefi', vendor: 'American Megatrends Inc.', version: '3.1' },
    bmc: { ipv4: `10.200.${(i >> 8) & 255}.${i & 255}`, mac: mac(9) },
    hw,
  };
}

const enrolBody = (i: number) => ({
  name: `node-${String(i).padStart(6, '0')}`,
  identity: { serial: `S${String(i).padStart(9, '0')}`, manufacturer: 'Supermicro', macs: [`0c:c4:7a:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`] },
  tags: { rack: `r${String(i % 50).padStart(2, '0')}`, pod: `p${i % 4}` },
  ...(i % 10 === 0 ? { owner: `team-${i % 7}` } : {}),
});

async function enrol(serve: ServeProcess, token: string): Promise<{ seconds: number; rate: number; p99ms: number }> {
  const started = Date.now();
  const latencies: number[] = [];
  let next = 0;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= API_ENROL) return;
      const body = enrolBody(i);
      const t0 = performance.now();
      const res = await fetch(`${serve.url}/api/v1/machines`, { method: 'POST', headers, body: JSON.stringify(body) });
      latencies.push(performance.now() - t0);
      if (res.status !== 201) throw new Error(`enrol ${i}: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer().catch(() => undefined);
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  const seconds = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds: Math.round(seconds), rate: Math.round(API_ENROL / seconds), p99ms: Math.round(percentile(latencies, 99) * 10) / 10 };
}

/** Machines API_ENROL..API_ENROL+BULK_ENROL through `POST /api/v1/machines/bulk`, BULK_BATCH a request, 16 clients. */
async function enrolBulk(serve: ServeProcess, token: string): Promise<{ seconds: number; rate: number; p99ms: number }> {
  const started = Date.now();
  const latencies: number[] = [];
  let next = API_ENROL;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  async function worker() {
    for (;;) {
      const first = next;
      next += BULK_BATCH;
      if (first >= API_ENROL + BULK_ENROL) return;
      const machines = Array.from({ length: Math.min(BULK_BATCH, API_ENROL + BULK_ENROL - first) }, (_, k) => enrolBody(first + k));
      const t0 = performance.now();
      const res = await fetch(`${serve.url}/api/v1/machines/bulk`, { method: 'POST', headers, body: JSON.stringify({ machines }) });
      latencies.push(performance.now() - t0);
      if (res.status !== 201) throw new Error(`bulk enrol ${first}: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer().catch(() => undefined);
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  const seconds = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds: Math.round(seconds * 10) / 10, rate: Math.round(BULK_ENROL / seconds), p99ms: Math.round(percentile(latencies, 99) * 10) / 10 };
}

/** A machine's state as the read scenarios find it: a fifth deployed, the rest available. */
const stateOf = (i: number) => (i % 5 === 0 ? 'deployed' : 'available');

/**
 * Machines API_ENROL+BULK_ENROL..N as the API would have enrolled and inspected them, written
 * straight to the rows the store's writer fills (machines, machine_macs, machine_tags), with
 * their facts: 500 machines a statement, since this is setup, not a figure (one statement a
 * row took 20 s of the quick run on PostgreSQL).
 */
async function writeRest(url: string): Promise<void> {
  if (API_ENROL + BULK_ENROL >= N) return;
  const store = await Store.open({ url });
  const now = new Date().toISOString();
  for (let i = API_ENROL + BULK_ENROL; i < N; i += 500) {
    const bodies = Array.from({ length: Math.min(N, i + 500) - i }, (_, k) => ({ n: i + k, b: enrolBody(i + k), id: randomUUID() }));
    await store.transaction(async (trx) => {
      const rows = bodies.map(({ n, b, id }) => ({ id, name: b.name, serial: b.identity.serial, manufacturer: b.identity.manufacturer, owner: b.owner ?? null, state: stateOf(n), facts: JSON.stringify(factsFor(n)), state_entered_at: now, created_at: now, updated_at: now }));
      await trx.insertInto('machines').values(rows as unknown as MachinesTable[]).execute();
      await trx.insertInto('machine_macs').values(bodies.flatMap(({ b, id }) => b.identity.macs.map((mac) => ({ mac, machine_id: id })))).execute();
      await trx.insertInto('machine_tags').values(bodies.flatMap(({ b, id }) => Object.entries(b.tags).map(([key, value]) => ({ machine_id: id, key, value, machine_name: b.name })))).execute();
    });
  }
  await store.close();
}

/** Facts are what the agent reports at inspection; here they are written straight to the rows enrolled through the API. */
async function addFacts(url: string): Promise<void> {
  const store = await Store.open({ url });
  const ids = await store.db.selectFrom('machines').select(['id', 'name']).where('facts', 'is', null).execute();
  await store.transaction(async (trx) => {
    for (const row of ids) {
      const n = Number(row.name.slice(5));
      await trx.updateTable('machines').set({ facts: JSON.stringify(factsFor(n)), state: stateOf(n) }).where('id', '=', row.id).execute();
    }
  });
  // What autovacuum does on a default PostgreSQL after a load like this one
  // (this machine's server runs with autovacuum off); SQLite's store analyses on open and close.
  if (store.dialect === 'postgres') await sql`vacuum analyze`.execute(store.db);
  await store.close();
}

/**
 * The yardstick for the enrolment figure, in the same run: the rows API_ENROL enrolments
 * write, in hand-written SQL without any of Plinth's code (bench/support/raw-enrol.ts), into a
 * database of their own with Plinth's schema: a transaction per machine (16 writers on
 * PostgreSQL), then 100 machines a transaction (group commit's best case).
 */
async function enrolYardstick(name: 'sqlite' | 'postgres') {
  const dir = mkdtempSync(join(tmpdir(), `plinth-bench-raw-${name}-`));
  const pg = name === 'postgres' ? await postgresBackend.create() : null;
  const url = pg ? pg.url : join(dir, 'plinth.sqlite');
  await (await Store.open({ url })).close();
  const load0 = loadAverage();
  const perMachine = await rawEnrolRate(url, { machines: API_ENROL, perTransaction: 1, clients: 16, first: 0 });
  const grouped = await rawEnrolRate(url, { machines: Math.max(API_ENROL, BULK_ENROL), perTransaction: BULK_BATCH, clients: 16, first: API_ENROL });
  await pg?.drop();
  rmSync(dir, { recursive: true, force: true });
  return { perMachine, grouped, loadAvg: `${load0} → ${loadAverage()}` };
}

async function runBackend(name: 'sqlite' | 'postgres') {
  const dataDir = mkdtempSync(join(tmpdir(), `plinth-bench-${name}-`));
  const pg = name === 'postgres' ? await postgresBackend.create() : null;
  const env: Record<string, string> = { PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `127.0.0.1:${await freePort()}`, PLINTH_LOG_LEVEL: 'warn' };
  if (pg) env.PLINTH_DATABASE_URL = pg.url;
  let serve = await startServe(env);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  console.log(`[${name}] enrolling ${API_ENROL} machines through the API, one a request…`);
  const enrolLoad0 = loadAverage();
  const enrolCpu0 = cpuSeconds(serve.child.pid!);
  const enrolled = await enrol(serve, token);
  // What an enrolment costs the controller whatever its share of the cores: CPU time per machine.
  const cpuMsPerMachine = Math.round(((cpuSeconds(serve.child.pid!) - enrolCpu0) * 1000 * 10) / API_ENROL) / 10;
  const enrolment = { ...enrolled, cpuMsPerMachine, loadAvg: `${enrolLoad0} → ${loadAverage()}` };
  const bulkLoad0 = loadAverage();
  const bulkCpu0 = cpuSeconds(serve.child.pid!);
  const bulked = BULK_ENROL > 0 ? await enrolBulk(serve, token) : { seconds: 0, rate: 0, p99ms: 0 };
  const bulkCpuMs = Math.round(((cpuSeconds(serve.child.pid!) - bulkCpu0) * 1000 * 100) / Math.max(1, BULK_ENROL)) / 100;
  const bulk = { ...bulked, machines: BULK_ENROL, perRequest: BULK_BATCH, cpuMsPerMachine: bulkCpuMs, loadAvg: `${bulkLoad0} → ${loadAverage()}` };
  console.log(`[${name}] bulk: ${bulk.rate} machines/s, ${bulk.cpuMsPerMachine} ms of CPU per machine`);
  await serve.stop();
  const rawEnrol = await enrolYardstick(name);
  console.log(`[${name}] the same rows in raw SQL: ${rawEnrol.perMachine} machines/s a transaction each, ${rawEnrol.grouped} in transactions of 100`);
  console.log(`[${name}] ${enrolment.rate} machines/s; writing the other ${Math.max(0, N - API_ENROL - BULK_ENROL)} straight to the database, adding facts…`);
  await writeRest(pg ? pg.url : join(dataDir, 'plinth.sqlite'));
  await addFacts(pg ? pg.url : join(dataDir, 'plinth.sqlite'));
  // The yardstick for a page's CPU: the driver alone reading the first page's rows, MACs and tags.
  const rawPageMs = await rawPageCpuMs(pg ? pg.url : join(dataDir, 'plinth.sqlite'));
  console.log(`[${name}] the driver alone reading a page of 100 (rows, MACs, tags): ${rawPageMs} ms of CPU; × ${CONNECTIONS} clients = ${Math.round(rawPageMs * CONNECTIONS)} ms`);
  // BENCH_CPU_PROF=DIR: a CPU profile of the controller over the read scenarios.
  serve = await startServe(env, [], { nodeArgs: cpuProfArgs() });
  const pid = serve.child.pid!;
  const rand = (n: number) => Math.floor(Math.random() * n);
  const name6 = (i: number) => `node-${String(i).padStart(6, '0')}`;
  const mid = Buffer.from(name6(Math.floor(N / 2))).toString('base64url');
  const scenarios: [string, () => string][] = [
    ['list first page (100)', () => '/api/v1/machines?limit=100'],
    ['list deep page (100, cursor at N/2)', () => `/api/v1/machines?limit=100&cursor=${mid}`],
    ['filter state+tag (100)', () => `/api/v1/machines?state=available&tag=rack=r${String(rand(50)).padStart(2, '0')}&limit=100`],
    ['filter owner', () => `/api/v1/machines?owner=team-${rand(7)}&limit=100`],
    ['search serial substring', () => `/api/v1/machines?q=S00${String(rand(N)).padStart(7, '0').slice(0, 5)}&limit=100`],
    ['search exact MAC', () => { const i = rand(N); return `/api/v1/machines?q=0c:c4:7a:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`; }],
    ['get one machine (random)', () => `/api/v1/machines/${name6(rand(N))}`],
    // What the web UI's machine list asks with every refresh, besides its page.
    ['counts per state (all)', () => '/api/v1/machine-counts'],
    ['counts per state, tag filter', () => `/api/v1/machine-counts?tag=rack=r${String(rand(50)).padStart(2, '0')}`],
    ['filter power (100)', () => '/api/v1/machines?power=unknown&limit=100'],
  ];
  const results: (LoadResult & { rssMiB: number; loadAvg: string; p99VsGetOne?: string; cpuMsPerRequest: number; queueFloorMs: number })[] = [];
  const cpu0 = cpuSeconds(pid);
  for (const [scenario, pick] of scenarios) {
    const before = cpuSeconds(pid);
    const r = await load({ scenario, url: serve.url, token, connections: CONNECTIONS, durationS: DURATION, pick });
    // The controller's CPU per request, and what it implies: one process answers one request at a
    // time on one core, so with CONNECTIONS requests always in flight each waits for the others
    // (Little's law): the median cannot go under about CONNECTIONS × that CPU, whatever the database.
    const cpuMsPerRequest = Math.round(((cpuSeconds(pid) - before) * 1000 * 100) / Math.max(1, r.requests)) / 100;
    const queueFloorMs = Math.round(cpuMsPerRequest * CONNECTIONS);
    results.push({ ...r, rssMiB: rssMiB(pid).rss, loadAvg: loadAverage(), cpuMsPerRequest, queueFloorMs });
    console.log(`[${name}] ${scenario}: ${r.rps} req/s p50 ${r.p50ms} ms p99 ${r.p99ms} ms, ${cpuMsPerRequest} ms of CPU a request (load ${loadAverage()})`);
  }
  // The yardstick: a single machine by name, measured in this run on this machine's load.
  const getOne = results.find((r) => r.scenario.startsWith('get one'))!;
  for (const r of results) r.p99VsGetOne = `${(r.p99ms / Math.max(1, getOne.p99ms)).toFixed(1)}×`;
  const mem = rssMiB(pid);
  const cpu = cpuSeconds(pid) - cpu0;
  await serve.stop();
  rmSync(dataDir, { recursive: true, force: true });
  await pg?.drop();
  return { backend: name, enrolment, bulk, rawEnrol, rawPageMs, results, peakRssMiB: mem.peak, controllerCpuS: Math.round(cpu) };
}

export async function run(): Promise<string> {
  ensureBuilt();
  const out = [];
  for (const b of ['sqlite', 'postgres'] as const) out.push(await runBackend(b));
  let md = `# Inventory at scale — ${today()}${process.argv.includes('--quick') ? ' (quick)' : ''}\n\n${machineInfo()}; load average (1/5/15 min) given per scenario, as other work shared the machine. ${N} machines with facts (~2.5 KB each), ${CONNECTIONS} connections, ${DURATION} s per scenario; the load generator (autocannon) runs on the same cores as the controller. "cpuMsPerRequest": the controller's CPU-milliseconds (user + system) per request in the scenario; "queueFloorMs": ${CONNECTIONS} × that, the median a single controller process cannot go under with ${CONNECTIONS} requests always in flight (each waits for the others' CPU: Little's law), whatever the database does. Facts are written straight to the rows after enrolment; PostgreSQL then gets the VACUUM ANALYZE autovacuum would give it (this server runs with autovacuum off).\n\n`;
  for (const o of out) {
    md += `## ${o.backend}\n\nEnrolment through the API (16 concurrent clients): ${o.enrolment.rate} machines/s (${o.enrolment.seconds} s for ${API_ENROL}${API_ENROL < N ? `; the other ${N - API_ENROL} written straight to the database` : ''}), p99 ${o.enrolment.p99ms} ms (load ${o.enrolment.loadAvg}); the controller used ${o.enrolment.cpuMsPerMachine} ms of CPU per machine (${Math.round(1000 / o.enrolment.cpuMsPerMachine)} machines/s if it had a core to itself). Then ${o.bulk.machines} more through the bulk endpoint (\`POST /api/v1/machines/bulk\`, ${o.bulk.perRequest} a request, 16 clients): ${o.bulk.rate} machines/s (${o.bulk.seconds} s), p99 ${o.bulk.p99ms} ms a request (load ${o.bulk.loadAvg}); ${o.bulk.cpuMsPerMachine} ms of the controller's CPU per machine (${Math.round(1000 / Math.max(0.01, o.bulk.cpuMsPerMachine))} machines/s on a core of its own). The same rows in raw SQL right after, without Plinth (bench/support/raw-enrol.ts): ${o.rawEnrol.perMachine} machines/s a transaction each, ${o.rawEnrol.grouped} machines/s ${BULK_BATCH} a transaction (load ${o.rawEnrol.loadAvg}); bulk against raw SQL at ${BULK_BATCH} a transaction: ${Math.round((100 * o.bulk.rate) / Math.max(1, o.rawEnrol.grouped))}%.\nThe driver alone (bench/support/raw-page.ts: prepared hand-written SQL, none of Plinth's code, no HTTP) reading the first page's 101 rows and their MACs and tags: ${o.rawPageMs} ms of CPU a page, so ${Math.round(o.rawPageMs * CONNECTIONS)} ms for ${CONNECTIONS} pages: the median a single process on this driver cannot go under with ${CONNECTIONS} pages always asked for, before any HTTP or JSON.\nController peak RSS ${o.peakRssMiB} MiB; ${o.controllerCpuS} CPU-seconds over the read scenarios.\n\n`;
    md += table(o.results as unknown as Record<string, unknown>[], ['scenario', 'rps', 'p50ms', 'p99ms', 'p99VsGetOne', 'cpuMsPerRequest', 'queueFloorMs', 'maxMs', 'non2xx', 'errors', 'rssMiB', 'loadAvg']) + '\n';
  }
  return record(process.argv.includes('--quick') ? 'inventory-quick' : 'inventory', md, { date: today(), machines: N, connections: CONNECTIONS, durationS: DURATION, machine: machineInfo(), apiEnrolled: API_ENROL, backends: out });
}
