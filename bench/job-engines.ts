import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { postgresBackend } from '../test/support/backends.js';
import { Store } from '../src/store/database.js';
import { claimJobs, enqueueJob, finishJob } from '../src/power/jobs.js';
import { newId } from '../src/core/ids.js';
import { cpuSeconds, loadAverage, machineInfo, record, table, today } from './support.js';

/**
 * Job queues on this PostgreSQL, queue overhead alone (every job does nothing): Plinth's
 * `provider_jobs` table (claimJobs / finishJob, what every controller's runner does) against
 * pg-boss and graphile-worker, the engines that run on PostgreSQL — in one run, one database
 * each, same job count, same workers × batch. Measured: jobs enqueued per second, jobs
 * claimed and finished per second, and the CPU of this process (the engines' client side).
 *
 * The engines are not Plinth's dependencies: the suite loads them from BENCH_JOB_ENGINES_DIR
 * (a directory with `npm install pg-boss@10 graphile-worker@0.17` done in it; pg-boss 10.4.2 is
 * the last to run on Node 20, graphile-worker 0.17.x runs on it) and measures only Plinth's
 * table when that is not set.
 */
const QUICK = process.argv.includes('--quick');
const JOBS = Number(process.env.BENCH_JOBS ?? (QUICK ? 2000 : 10000));
const WORKERS = 8;
const BATCH = 8;

interface Figure {
  engine: string;
  version: string;
  enqueuePerS: number;
  runPerS: number;
  cpuS: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; cpu: number; value: T }> {
  const c0 = cpuSeconds(process.pid);
  const t0 = performance.now();
  const value = await fn();
  return { s: (performance.now() - t0) / 1000, cpu: cpuSeconds(process.pid) - c0, value };
}

async function plinthTable(): Promise<Figure> {
  const db = await postgresBackend.create();
  const store = await Store.open({ url: db.url });
  try {
    // One appliance per job: Plinth's one-job-per-appliance rule does not hold anything back here.
    const now = new Date();
    const appliances = Array.from({ length: JOBS }, () => newId());
    const t = new Date().toISOString();
    for (let k = 0; k < JOBS; k += 500) {
      await store.db
        .insertInto('appliances')
        .values(appliances.slice(k, k + 500).map((id, i) => ({ id, name: `a${k + i}`, type: 'redfish', address: 'http://127.0.0.1:1', username: 'u', password_enc: 'x', site: null, created_at: t, updated_at: t }) as never))
        .execute();
    }
    const enq = await timed(async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          for (let k = next++; k < JOBS; k = next++) await enqueueJob(store.db, { applianceId: appliances[k]!, site: null, spec: { kind: 'status', ref: 's' }, now, deadlineMs: 3_600_000 });
        }),
      );
    });
    let done = 0;
    const work = await timed(async () => {
      await Promise.all(
        Array.from({ length: WORKERS }, async (_, w) => {
          while (done < JOBS) {
            const jobs = await claimJobs(store, { site: null, claimer: `bench-${w}`, limit: BATCH, leaseMs: 60_000, now: new Date() });
            if (jobs.length === 0) {
              await new Promise((r) => setTimeout(r, 10));
              continue;
            }
            for (const j of jobs) if (await finishJob(store.db, j.id, `bench-${w}`, { status: 'succeeded', result: {} }, new Date())) done++;
          }
        }),
      );
    });
    return { engine: "Plinth's provider_jobs table", version: '-', enqueuePerS: JOBS / enq.s, runPerS: JOBS / work.s, cpuS: enq.cpu + work.cpu };
  } finally {
    await store.close();
    await db.drop();
  }
}

async function load(dir: string, name: string): Promise<{ mod: any; version: string }> {
  const req = createRequire(join(dir, 'package.json'));
  const version = (req(`${name}/package.json`) as { version: string }).version;
  return { mod: await import(pathToFileURL(req.resolve(name)).href), version };
}

async function pgBoss(dir: string): Promise<Figure> {
  const { mod, version } = await load(dir, 'pg-boss');
  const PgBoss = mod.default ?? mod;
  const db = await postgresBackend.create();
  const boss = new PgBoss({ connectionString: db.url, max: 10, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  try {
    await boss.start();
    await boss.createQueue('bench');
    const enq = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        for (let k = next++; k < JOBS; k = next++) await boss.send('bench', { kind: 'status', ref: 's' });
      }));
    });
    let done = 0;
    const work = await timed(async () => {
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          while (done < JOBS) {
            const jobs: { id: string }[] = await boss.fetch('bench', { batchSize: BATCH });
            if (jobs.length === 0) {
              await new Promise((r) => setTimeout(r, 10));
              continue;
            }
            for (const j of jobs) (await boss.complete('bench', j.id), done++);
          }
        }),
      );
    });
    return { engine: 'pg-boss', version, enqueuePerS: JOBS / enq.s, runPerS: JOBS / work.s, cpuS: enq.cpu + work.cpu };
  } finally {
    await boss.stop({ graceful: true, close: true, wait: true, timeout: 30_000 }).catch(() => undefined);
    await db.drop();
  }
}

async function graphileWorker(dir: string): Promise<Figure> {
  const { mod, version } = await load(dir, 'graphile-worker');
  const db = await postgresBackend.create();
  const utils = await mod.makeWorkerUtils({ connectionString: db.url });
  try {
    await utils.migrate();
    const enq = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        for (let k = next++; k < JOBS; k = next++) await utils.addJob('bench', { kind: 'status', ref: 's' });
      }));
    });
    let done = 0;
    let finished: () => void = () => undefined;
    const allDone = new Promise<void>((r) => (finished = r));
    const work = await timed(async () => {
      // Its own runner: WORKERS × BATCH jobs at once, LISTEN/NOTIFY plus polling, the way it is meant to run.
      const runner = await mod.run({
        connectionString: db.url,
        concurrency: WORKERS * BATCH,
        noHandleSignals: true,
        pollInterval: 100,
        logger: new mod.Logger(() => () => undefined),
        taskList: { bench: async () => void (++done >= JOBS && finished()) },
      });
      await allDone;
      await runner.stop();
    });
    return { engine: 'graphile-worker', version, enqueuePerS: JOBS / enq.s, runPerS: JOBS / work.s, cpuS: enq.cpu + work.cpu };
  } finally {
    await utils.release();
    await db.drop();
  }
}

export async function run(): Promise<string> {
  const dir = process.env.BENCH_JOB_ENGINES_DIR;
  const figures: Figure[] = [];
  const order: (() => Promise<Figure>)[] = [plinthTable];
  if (dir && existsSync(join(dir, 'node_modules', 'pg-boss'))) order.push(() => pgBoss(dir));
  if (dir && existsSync(join(dir, 'node_modules', 'graphile-worker'))) order.push(() => graphileWorker(dir));
  for (const f of order) {
    const fig = await f();
    console.log(`[job-engines] ${fig.engine} ${fig.version}: enqueue ${fig.enqueuePerS.toFixed(0)}/s, claim+finish ${fig.runPerS.toFixed(0)}/s, ${fig.cpuS.toFixed(1)} CPU-s here; load ${loadAverage()}`);
    figures.push(fig);
  }
  const rows = figures.map((f) => ({
    engine: f.engine,
    version: f.version,
    'enqueued per second': Math.round(f.enqueuePerS),
    'claimed and finished per second': Math.round(f.runPerS),
    'client CPU-seconds': f.cpuS.toFixed(1),
  }));
  const md = `# Job queues on PostgreSQL — ${today()}

${machineInfo()}; load average at the end ${loadAverage()}. ${JOBS} jobs that do nothing, on the local PostgreSQL
(shared with other work on this machine), a fresh database per engine; enqueued by ${WORKERS} concurrent
callers one at a time, then claimed and finished by ${WORKERS} workers taking up to ${BATCH} at a time
(graphile-worker: its own runner with concurrency ${WORKERS * BATCH}). Plinth's table: one appliance per job,
so its one-job-per-appliance rule holds nothing back.${dir ? '' : '\n\nBENCH_JOB_ENGINES_DIR was not set: only Plinth\'s table was measured.'}

${table(rows, Object.keys(rows[0] ?? {}))}`;
  return record(QUICK ? 'job-engines-quick' : 'job-engines', md, { date: today(), machine: machineInfo(), loadAverage: loadAverage(), jobs: JOBS, workers: WORKERS, batch: BATCH, figures });
}
