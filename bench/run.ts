import { loadAverage } from './support.js';

/**
 * `npm run bench [suite…]`: runs benchmarks and records their results with the date in
 * bench/results/. Benchmarks are never part of `npm test` (the machines are shared and noisy).
 */
const SUITES: Record<string, () => Promise<{ run(): Promise<string> }>> = {
  inventory: () => import('./inventory.js'),
  'boot-storm': () => import('./boot-storm.js'),
  matching: () => import('./matching.js'),
  providers: () => import('./providers.js'),
  deploy: () => import('./deploy.js'),
  multicast: () => import('./multicast.js'),
  'multicast-vms': () => import('./multicast-vms.js'),
  differential: () => import('./differential.js'),
  serving: () => import('./serving.js'),
  scaleout: () => import('./scaleout.js'),
  'job-engines': () => import('./job-engines.js'),
  'site-cache': () => import('./site-cache.js'),
};

// Flags (`--quick`) are for the suites, which read process.argv themselves; the reduced sizes
// of `--quick` are set here (BENCH_* set by hand still win), so that the quick run of every
// suite takes under ten minutes on the build machine (bench/results/*-quick.md give its time):
// - inventory: 10 000 machines, 500 of them enrolled through the API one a request and
//   2 000 through the bulk endpoint, the rest written straight to the database, 2 s per scenario;
// - boot-storm: 1000 machines only, 3 s per download run;
// - matching: 2 000 machines matched alone, 100 inspections per allocation run;
// - providers: 150 BMCs;
// - deploy: the concurrent downloads only (no VM), of an image of random bytes;
// - scaleout: 1 and 2 controllers (the goal compares two with one), not 3, 2 s per load;
// - multicast, differential, serving, site-cache: their own reduced sets (multicast: 3 and 10
//   receivers of an 8 MiB image, each tool; differential: a 32 MiB image; site-cache: a
//   16 MiB image, the figures being shares of the image);
// - multicast-vms: not run (three VMs under TCG take minutes).
const QUICK = process.argv.includes('--quick');
if (QUICK) {
  process.env.BENCH_MACHINES ??= '10000';
  process.env.BENCH_API_ENROL ??= '500';
  process.env.BENCH_BULK_ENROL ??= '2000';
  process.env.BENCH_DURATION ??= '2';
  process.env.BENCH_STORM ??= '1000';
  process.env.BENCH_WRK_SECONDS ??= '3';
  process.env.BENCH_MATCH_MACHINES ??= '2000';
  process.env.BENCH_ALLOC_MACHINES ??= '100';
  process.env.BENCH_BMCS ??= '150';
  process.env.BENCH_SCALEOUT_PROCESSES ??= '1,2';
}
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const names = wanted.length ? wanted : Object.keys(SUITES).filter((n) => !(QUICK && n === 'multicast-vms'));
const unknown = names.filter((n) => !SUITES[n]);
if (unknown.length) {
  console.error(`unknown benchmark '${unknown[0]}'; one of: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
const started = Date.now();
const times: string[] = [];
for (const n of names) {
  const t0 = Date.now();
  const load0 = loadAverage();
  try {
    const file = await (await SUITES[n]!()).run();
    console.log(`${n}: results in ${file}`);
  } catch (e) {
    // One suite failing (a peer gone, a database restarted under it) leaves the others to run.
    console.error(`${n} failed:`, e);
    process.exitCode = 1;
  }
  times.push(`${n}: ${Math.round((Date.now() - t0) / 1000)} s (load ${load0} → ${loadAverage()})`);
}
// The whole run's time, which `--quick` keeps under ten minutes.
console.log(`${QUICK ? 'quick run' : 'run'}: ${Math.round((Date.now() - started) / 1000)} s in all\n  ${times.join('\n  ')}`);
