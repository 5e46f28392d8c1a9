#!/usr/bin/env node
// `npm run bench [suite…]`: makes sure what the benchmarks need is on the machine (the test
// packages plus nginx and wrk, the reference server and load generator), builds, and runs
// bench/run.ts, which records the results in bench/results/.
import { execFileSync, spawnSync } from 'node:child_process';
import { ensurePackages } from './packages.mjs';

ensurePackages('npm run bench', 'test', 'bench');
execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
process.exit(spawnSync('npx', ['tsx', 'bench/run.ts', ...process.argv.slice(2)], { stdio: 'inherit' }).status ?? 1);
