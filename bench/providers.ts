import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/database.js';
import { ensureBuilt, freePort, startServe, type ServeProcess } from '../test/support/plinth-process.js';
import { startFarm, type Farm } from './support/redfish-farm.js';
import { cpuSeconds, machineInfo, record, rssMiB, table, today } from './support.js';

/**
 * Power at scale: N simulated Redfish BMCs answering after 50–500 ms. Every machine is sent to
 * inspection at once; the lifecycle sets each one's boot device and powers it on through its
 * BMC. Measured: wall time until every BMC saw its system powered on, the most requests any
 * one BMC had in flight at once (Plinth promises one), controller CPU. Then the power-state
 * sync loop over M machines: one full pass, its wall time and CPU.
 */
const BMCS = Number(process.env.BENCH_BMCS ?? 1000);
const SYSTEMS = Number(process.env.BENCH_SYSTEMS_PER_BMC ?? 10);
const LATENCY: [number, number] = [50, 500];

async function parallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function api(serve: ServeProcess, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${serve.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function run(): Promise<string> {
  ensureBuilt();
  const farm: Farm = await startFarm({ bmcs: BMCS, systemsPerBmc: SYSTEMS, latencyMs: LATENCY });
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-bench-power-'));
  const env = {
    PLINTH_DATA_DIR: dataDir,
    PLINTH_LISTEN: `127.0.0.1:${await freePort()}`,
    PLINTH_LOG_LEVEL: 'warn',
    PLINTH_PROVIDERS_PARALLEL: String(BMCS),
    PLINTH_PROVIDERS_SYNC_INTERVAL: '0',
    PLINTH_PROVIDERS_TIMEOUT: '30s',
  };
  let serve = await startServe(env);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  console.log(`[providers] registering ${BMCS} BMCs and ${BMCS * SYSTEMS} machines…`);
  const names: string[] = [];
  await parallel(farm.bmcs.map((b, i) => ({ b, i })), 32, async ({ b, i }) => {
    const a = await api(serve, token, 'POST', '/api/v1/appliances', { name: `bmc-${i}`, type: 'redfish', address: b.url, username: 'root', password: 'calvin' });
    // Setup, not a figure: a BMC's machines in one request (the bulk endpoint).
    const machines = Array.from({ length: SYSTEMS }, (_, s) => ({ name: `farm-${i}-${s}`, provider: { applianceId: a.id, ref: `/redfish/v1/Systems/s${s}` } }));
    await api(serve, token, 'POST', '/api/v1/machines/bulk', { machines });
    names.push(machines[0]!.name);
  });
  for (const b of farm.bmcs) (b.peakInFlight = 0), (b.requests = 0);

  console.log(`[providers] powering on ${names.length} machines through the lifecycle…`);
  const cpu0 = cpuSeconds(serve.child.pid!);
  const t0 = performance.now();
  await parallel(names, 64, async (name) => void (await api(serve, token, 'POST', `/api/v1/machines/${name}/actions/inspect`, {})));
  const accepted = performance.now() - t0;
  while (farm.bmcs.some((b) => b.systems[0]!.power !== 'On')) await new Promise((r) => setTimeout(r, 50));
  const powerOnS = (performance.now() - t0) / 1000;
  const powerCpu = cpuSeconds(serve.child.pid!) - cpu0;
  const peak = Math.max(...farm.bmcs.map((b) => b.peakInFlight));
  const pxe = farm.bmcs.filter((b) => b.systems[0]!.bootTarget === 'Pxe').length;
  const requests = farm.bmcs.reduce((n, b) => n + b.requests, 0);
  await serve.stop();

  console.log(`[providers] power sync over ${BMCS * SYSTEMS} machines…`);
  serve = await startServe({ ...env, PLINTH_PROVIDERS_SYNC_INTERVAL: '5s' });
  const store = await Store.open({ url: join(dataDir, 'plinth.sqlite') });
  const since = new Date().toISOString();
  const cpu1 = cpuSeconds(serve.child.pid!);
  const s0 = performance.now();
  for (;;) {
    const r = await store.db.selectFrom('machines').select((eb) => eb.fn.countAll().as('n')).where('power_read_at', '>', since).executeTakeFirstOrThrow();
    if (Number(r.n) >= BMCS * SYSTEMS) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // The first pass starts after one jittered interval (4–6 s): measure the pass itself from its first job.
  const firstJob = await store.db.selectFrom('provider_jobs').select('created_at').where('kind', '=', 'sync').orderBy('seq').executeTakeFirstOrThrow();
  const syncWall = (performance.now() - s0) / 1000 - (Date.parse(firstJob.created_at) - Date.parse(since)) / 1000;
  const syncCpu = cpuSeconds(serve.child.pid!) - cpu1;
  const mem = rssMiB(serve.child.pid!);
  await store.close();
  await serve.stop();
  await farm.close();
  rmSync(dataDir, { recursive: true, force: true });

  const rows = [
    { measure: `power-on of ${names.length} machines through the lifecycle (wall)`, value: `${powerOnS.toFixed(1)} s (all inspect actions accepted in ${(accepted / 1000).toFixed(1)} s)` },
    { measure: 'boot override set to Pxe before power-on', value: `${pxe} / ${names.length}` },
    { measure: 'peak concurrent requests at any one BMC', value: String(peak) },
    { measure: 'BMC requests during power-on', value: String(requests) },
    { measure: 'controller CPU during power-on', value: `${powerCpu.toFixed(1)} s` },
    { measure: `one power-sync pass over ${BMCS * SYSTEMS} machines (${BMCS} BMCs)`, value: `${syncWall.toFixed(1)} s wall, ${syncCpu.toFixed(1)} CPU-seconds` },
    { measure: 'controller RSS after sync', value: `${mem.rss} MiB (peak ${mem.peak} MiB)` },
  ];
  const md = `# Power at scale — ${today()}${process.argv.includes('--quick') ? ' (quick)' : ''}\n\n${machineInfo()}. ${BMCS} simulated Redfish BMCs (one HTTP listener each, ${LATENCY[0]}–${LATENCY[1]} ms per request, sessions), ${SYSTEMS} systems each; controller on SQLite with providers.parallel=${BMCS}; the BMC farm runs in the benchmark process on the same cores.\n\n${table(rows, ['measure', 'value'])}`;
  return record(process.argv.includes('--quick') ? 'providers-quick' : 'providers', md, { date: today(), machine: machineInfo(), bmcs: BMCS, systemsPerBmc: SYSTEMS, latencyMs: LATENCY, powerOnS, accepted, peak, pxe, requests, powerCpu, syncWall, syncCpu, rssMiB: mem });
}
