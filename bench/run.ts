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
  serving: () => import('./serving.js'),
};

// Flags (`--quick`) are for the suites, which read process.argv themselves.
// Inventory's --quick: 2 000 of its 100 000 machines enrolled through the API, the rest written
// straight to the database by the store, 4 s per scenario (BENCH_* set by hand still win).
if (process.argv.includes('--quick')) {
  process.env.BENCH_API_ENROL ??= '2000';
  process.env.BENCH_DURATION ??= '4';
}
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const names = wanted.length ? wanted : Object.keys(SUITES);
for (const n of names) {
  const load = SUITES[n];
  if (!load) {
    console.error(`unknown benchmark '${n}'; one of: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  const file = await (await load()).run();
  console.log(`${n}: results in ${file}`);
}
