import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/database.js';
import { allocateSync, compileSpecs, MemoryLedger, type EngineProfile } from '../src/matching/index.js';
import { pgAvailable, postgresBackend } from '../test/support/backends.js';
import { ensureBuilt, freePort, startServe } from '../test/support/plinth-process.js';
import { bladeFacts, bladeHw, bootAndReport, fetchHttp } from '../test/integration/matching-support.js';
import { rawInspectionCpuMs } from './support/raw-inspection.js';
import { bareHttpCpuMs } from './support/bare-http.js';
import { cpuProfArgs, cpuSeconds, loadAverage, machineInfo, percentile, record, rssMiB, table, today } from './support.js';

/**
 * Matching at scale.
 * 1. Matching alone: 10 000 machines, each a real 527-line HP BL460c hardware list with its
 *    own serial, MACs and address, against 100 profiles of 12 rules (variables, functions,
 *    `network()`, `regexp()`), tried in order as inspection tries them; machine i matches
 *    profile i mod 100, so a machine goes through 50 profiles on average. Half the profiles
 *    put their discriminating rule first, half last (the costly order).
 * 2. Allocation: machines boot, say hello and report their facts through a controller
 *    process, 64 at a time, on SQLite and on PostgreSQL; the same 100 profiles (quota
 *    1000 each) allocate from 10 pools of 250 entries, so every report takes a quota and a
 *    pool entry under contention.
 */
const MATCH_MACHINES = Number(process.env.BENCH_MATCH_MACHINES ?? 10_000);
const PROFILES = Number(process.env.BENCH_MATCH_PROFILES ?? 100);
const ALLOC_MACHINES = Number(process.env.BENCH_ALLOC_MACHINES ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_ALLOC_CONCURRENCY ?? 64);
const WARMUP = Math.min(50, ALLOC_MACHINES);
const POOLS = 10;
const POOL_SIZE = Math.max(250, Math.ceil(ALLOC_MACHINES / POOLS));
const PRODUCT = 'ProLiant BL460c Gen8 (641016-B21)';

function profileSpec(k: number): string[][] {
  const tag = String(k).padStart(2, '0');
  const discriminator = ['system', 'product', 'serial', `regexp(${tag}$)`];
  const common = [
    ['system', 'product', 'vendor', 'HP'],
    ['system', 'product', 'name', PRODUCT],
    ['cpu', 'physical', 'number', '2'],
    ['cpu', 'logical', 'number', 'ge(16)'],
    ['cpu', 'physical_0', 'cores', '$cores'],
    ['disk', '$disk', 'size', 'gt(100)'],
    ['disk', '$disk', 'vendor', 'HP'],
    ['network', '$eth', 'serial', '$mac'],
    ['network', '$eth', 'link', 'yes'],
    ['network', '$eth', 'ipv4', 'network(10.29.0.0/16)'],
    ['memory', '$bank', 'size', 'ge(8589934592)'],
  ];
  return k % 2 === 0 ? [discriminator, ...common] : [...common, discriminator];
}

const profileName = (k: number) => `p${String(k).padStart(2, '0')}`;

async function matchAlone() {
  const profiles: EngineProfile[] = Array.from({ length: PROFILES }, (_, k) => ({ id: String(k), name: profileName(k), quota: null, specs: compileSpecs(profileSpec(k)), poolId: null }));
  const ledger = new MemoryLedger(profiles, () => null);
  const select = (hw: ReturnType<typeof bladeHw>) => allocateSync({ id: 'bench', hw, holding: { profileId: null, quotaHeld: false }, entry: null }, profiles, ledger);
  const lines = bladeHw(1).length;
  // Warm up first: the figures are for a controller that has been running a while.
  for (let i = 0; i < 200; i++) select(bladeHw(MATCH_MACHINES + i));
  const times: number[] = [];
  let wrong = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < MATCH_MACHINES; i++) {
    const hw = bladeHw(i);
    const t0 = performance.now();
    const sel = select(hw);
    times.push(performance.now() - t0);
    if (sel.profile?.name !== profileName(i % PROFILES)) wrong++;
  }
  const seconds = (performance.now() - started) / 1000;
  // CPU time, not wall time: "on one core" whatever share of the cores other work leaves (the
  // loop includes making each machine's list, so this slightly understates matching alone).
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const matchSeconds = times.reduce((a, b) => a + b, 0) / 1000;
  times.sort((a, b) => a - b);
  if (wrong) throw new Error(`${wrong} machines matched the wrong profile`);
  return {
    machines: MATCH_MACHINES,
    profiles: PROFILES,
    hwLines: lines,
    machinesPerS: Math.round(MATCH_MACHINES / matchSeconds),
    machinesPerCpuS: Math.round(MATCH_MACHINES / cpuSeconds),
    p50ms: Math.round(percentile(times, 50) * 100) / 100,
    p99ms: Math.round(percentile(times, 99) * 100) / 100,
    maxMs: Math.round(times[times.length - 1]! * 100) / 100,
    wallS: Math.round(seconds * 10) / 10,
    loadAvg: loadAverage(),
  };
}

/**
 * One controller per backend: WARMUP inspections unmeasured (the figures are for a controller
 * that has been running a while, its code compiled), ALLOC_MACHINES inspections with no
 * profiles (the yardstick: the same boots, hellos and facts with nothing to match), then the
 * profiles and pools applied and ALLOC_MACHINES other machines inspected against them. One
 * controller start-up and database for both runs: setup, not a figure.
 */
async function allocation(backend: 'sqlite' | 'postgres') {
  const dataDir = mkdtempSync(join(tmpdir(), `plinth-bench-matching-${backend}-`));
  mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
  writeFileSync(join(dataDir, 'boot', 'installer', 'vmlinuz'), 'kernel');
  writeFileSync(join(dataDir, 'boot', 'installer', 'initrd.img'), 'initrd');
  const pg = backend === 'postgres' ? await postgresBackend.create() : null;
  const dbUrl = pg ? pg.url : join(dataDir, 'plinth.sqlite');
  const prof = cpuProfArgs();
  // Every machine is new: the runs measure inspection, not the enrolment rate limit (enrolment.burst).
  const serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_DATABASE_URL: dbUrl, PLINTH_LISTEN: `127.0.0.1:${await freePort()}`, PLINTH_LOG_LEVEL: 'warn', PLINTH_ENROLMENT_BURST: '100000' }, [], { nodeArgs: prof });
  const pid = serve.child.pid!;
  try {
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const http = fetchHttp(serve.url);
    const inspect = async (withProfiles: boolean, first: number, count = ALLOC_MACHINES) => {
      const facts: number[] = [];
      const whole: number[] = [];
      let next = first;
      const cpu0 = cpuSeconds(pid);
      const load0 = loadAverage();
      const started = performance.now();
      const worker = async () => {
        for (;;) {
          const i = next++;
          if (i >= first + count) return;
          const f = bladeFacts(i);
          const t0 = performance.now();
          // The report of facts is the request that matches and allocates; time it on its own too.
          const timed = async (method: string, path: string, body?: unknown, bearer?: string) => {
            const s = performance.now();
            const r = await http(method, path, body, bearer);
            if (path === '/agent/v1/facts') facts.push(performance.now() - s);
            return r;
          };
          await bootAndReport(timed, f);
          whole.push(performance.now() - t0);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const seconds = (performance.now() - started) / 1000;
      const cpu = cpuSeconds(pid) - cpu0;
      const mem = rssMiB(pid);
      facts.sort((a, b) => a - b);
      whole.sort((a, b) => a - b);
      return {
        backend,
        profiles: withProfiles ? `${PROFILES}, ${POOLS} pools` : 'none',
        machines: ALLOC_MACHINES,
        concurrency: CONCURRENCY,
        inspectionsPerS: Math.round(ALLOC_MACHINES / seconds),
        factsP50ms: Math.round(percentile(facts, 50)),
        factsP99ms: Math.round(percentile(facts, 99)),
        inspectionP99ms: Math.round(percentile(whole, 99)),
        seconds: Math.round(seconds * 10) / 10,
        controllerCpuS: Math.round(cpu),
        // What an inspection costs the controller whatever its share of the cores.
        cpuMsPerInspection: Math.round((cpu * 1000 * 10) / ALLOC_MACHINES) / 10,
        peakRssMiB: mem.peak,
        loadAvg: `${load0} → ${loadAverage()}`,
      };
    };
    console.log(`[allocation] ${backend}: ${WARMUP} inspections to warm up, then ${ALLOC_MACHINES} without profiles, ${CONCURRENCY} at a time…`);
    await inspect(false, 0, WARMUP);
    const without = await inspect(false, WARMUP);
    console.log(`[allocation] ${backend}: ${without.inspectionsPerS} inspections/s, facts p99 ${without.factsP99ms} ms`);
    const width = String(POOL_SIZE).length;
    const setup = await http(
      'POST',
      '/api/v1/profiles/apply',
      {
        pools: Array.from({ length: POOLS }, (_, k) => ({ name: `pool-${k}`, generate: { hostname: `r${k}n${'1'.padStart(width, '0')}-${POOL_SIZE}` } })),
        profiles: Array.from({ length: PROFILES }, (_, k) => ({ name: profileName(k), position: k, quota: 1000, pool: `pool-${k % POOLS}`, spec: profileSpec(k) })),
      },
      token,
    );
    if (setup.status !== 200) throw new Error(`setup: ${setup.status} ${setup.body}`);
    console.log(`[allocation] ${backend}: ${ALLOC_MACHINES} inspections against ${PROFILES} profiles, ${CONCURRENCY} at a time…`);
    const matched = await inspect(true, WARMUP + ALLOC_MACHINES);
    console.log(`[allocation] ${backend}: ${matched.inspectionsPerS} inspections/s, facts p99 ${matched.factsP99ms} ms`);

    // The machines of the first run matched nothing; each of the second holds exactly one entry, none held twice.
    const store = await Store.open({ url: dbUrl });
    const held = await store.db.selectFrom('pool_entries').select('machine_id').where('machine_id', 'is not', null).execute();
    const withEntry = await store.db.selectFrom('machines').select('serial').where('pool_entry_id', 'is not', null).execute();
    await store.close();
    const expected = new Set(Array.from({ length: ALLOC_MACHINES }, (_, k) => bladeFacts(WARMUP + ALLOC_MACHINES + k).system.serial));
    if (held.length !== ALLOC_MACHINES || new Set(held.map((h) => h.machine_id)).size !== ALLOC_MACHINES || withEntry.length !== ALLOC_MACHINES || !withEntry.every((m) => expected.has(m.serial))) {
      throw new Error(`allocation check failed: ${held.length} entries held, ${withEntry.length} machines with an entry, ${ALLOC_MACHINES} machines`);
    }
    // The yardstick: the driver alone writing an inspection on this database (bench/support/raw-inspection.ts).
    const driverAloneCpuMs = await rawInspectionCpuMs(dbUrl, bladeFacts);
    console.log(`[allocation] ${backend}: the driver alone writing an inspection: ${driverAloneCpuMs} ms of CPU`);
    return [matched, without].map((r) => ({ ...r, driverAloneCpuMs }));
  } finally {
    await serve.stop();
    rmSync(dataDir, { recursive: true, force: true });
    await pg?.drop();
  }
}

export async function run(): Promise<string> {
  ensureBuilt();
  console.log(`[match] ${MATCH_MACHINES} machines against ${PROFILES} profiles…`);
  const match = await matchAlone();
  console.log(`[match] ${match.machinesPerS} machines/s, p99 ${match.p99ms} ms`);
  const alloc = [];
  for (const b of pgAvailable ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const)) alloc.push(...(await allocation(b)));
  console.log(`[floor] ${ALLOC_MACHINES} inspections' requests answered by a bare Node server…`);
  const bareHttpMs = await bareHttpCpuMs(ALLOC_MACHINES, CONCURRENCY);
  console.log(`[floor] bare Node: ${bareHttpMs} ms of CPU per inspection's three requests`);
  const quick = process.argv.includes('--quick');
  let md = `# Matching — ${today()}${quick ? ' (quick)' : ''}\n\n${machineInfo()}; load average (1/5/15 min) given with each figure, as other work shared the machine.\n\n`;
  md += `## Matching alone\n\n${match.machines} machines (real ${match.hwLines}-line HP BL460c hardware lists, each with its own serial, MACs and address) against ${match.profiles} profiles of 12 rules, tried in order; each machine goes through ${match.profiles / 2} profiles on average. One core, in process, after 200 machines of warm-up; p50/p99 are per machine (all the profiles it tries); machinesPerS is over wall time, machinesPerCpuS over the process's CPU time (what one core would do, whatever share of the cores other work leaves). Load ${match.loadAvg}.\n\n`;
  md += table([match as unknown as Record<string, unknown>], ['machines', 'profiles', 'machinesPerS', 'machinesPerCpuS', 'p50ms', 'p99ms', 'maxMs', 'wallS']) + '\n';
  md += `## Inspection with allocation\n\nA controller process; ${CONCURRENCY} machines at a time boot (script), say hello and report their facts, which matches them against the ${PROFILES} profiles (quota 1000 each, taken by a conditional update) and allocates an entry from one of ${POOLS} pools of ${POOL_SIZE}. "facts" is the report request alone (match + quota + allocation + state change, one transaction); "inspection" is boot + hello + facts. The load generator shares the cores with the controller. Every run checks that each machine holds exactly one entry and no entry is held twice. The runs without profiles are the same inspections with nothing to match, by the same controller just before the profiles were applied: the difference is what matching and allocation cost.\n\n`;
  md += table(alloc as unknown as Record<string, unknown>[], ['backend', 'profiles', 'machines', 'concurrency', 'inspectionsPerS', 'factsP50ms', 'factsP99ms', 'inspectionP99ms', 'controllerCpuS', 'cpuMsPerInspection', 'peakRssMiB', 'loadAvg', 'driverAloneCpuMs']) + '\n';
  const matchMs = Math.round((1000 / match.machinesPerCpuS) * 100) / 100;
  md += `### The floor under an inspection\n\nWhat any controller on this machine spends on an inspection before its own code, measured in this run:\n\n- \`driverAloneCpuMs\`: the database driver alone writing what an inspection records, with prepared hand-written SQL on Plinth's schema, in one transaction per request (bench/support/raw-inspection.ts);\n- a bare Node server (node:http, JSON.parse of each body, a fixed answer) answering the same three requests from the same client, ${CONCURRENCY} at a time: ${bareHttpMs} ms of CPU per inspection (bench/support/bare-http.ts);\n- matching alone, above: ${matchMs} ms of CPU per machine against ${PROFILES} profiles.\n\n`;
  md += `Their sum, against the controller's \`cpuMsPerInspection\` with profiles:\n\n`;
  md += table(
    alloc.filter((a) => a.profiles !== 'none').map((a) => {
      const floor = Math.round((a.driverAloneCpuMs + bareHttpMs + matchMs) * 100) / 100;
      return { backend: a.backend, floorCpuMs: floor, floorPerCoreS: Math.round(1000 / floor), cpuMsPerInspection: a.cpuMsPerInspection, overFloor: `${Math.round((a.cpuMsPerInspection / floor) * 10) / 10}×` };
    }),
    ['backend', 'floorCpuMs', 'floorPerCoreS', 'cpuMsPerInspection', 'overFloor'],
  ) + '\n';
  return record(quick ? 'matching-quick' : 'matching', md, { date: today(), machine: machineInfo(), match, allocation: alloc, bareHttpMs, matchMs });
}
