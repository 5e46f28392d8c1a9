#!/usr/bin/env node
// `npm test`: makes sure what the tests need is on the machine, builds, and runs every test.
//  1. Debian packages the tests use (QEMU, iPXE, OVMF, OpenIPMI, debootstrap…; scripts/packages.json):
//     missing ones are installed with apt-get when running as root; otherwise it says what to install.
//  2. With CI=true, PostgreSQL must be up (the PostgreSQL tests never skip there): start it if down.
//  3. Build (TypeScript and the agent bundle), then run vitest.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { ensurePackages } from './packages.mjs';

function ensurePostgres() {
  if (process.env.CI !== 'true') return;
  const up = () => spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432'], { stdio: 'ignore' }).status === 0;
  if (up()) return;
  console.log('PostgreSQL is down: starting it (CI=true runs the PostgreSQL tests)');
  const versions = execFileSync('ls', ['/etc/postgresql'], { encoding: 'utf8' }).trim().split(/\s+/);
  for (const v of versions) spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', v, 'main', 'start'], { stdio: 'inherit' });
  for (let i = 0; i < 30 && !up(); i++) spawnSync('sleep', ['1']);
  if (!up()) {
    console.error('PostgreSQL did not come up on 127.0.0.1:5432');
    process.exit(1);
  }
}

ensurePackages('npm test', 'test');
ensurePostgres();
execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });

// The end-to-end tests boot VMs under emulation: they run after the rest, in two lanes (two
// files at a time, in test/support/e2e-sequencer.ts's order), each file taking the VM slots it needs from the machine-wide
// two (test/support/vm-slots.ts, vmrun's lock files), and share the installer and image builds
// (kept in PLINTH_E2E_DIR across runs). A run started under vmrun holds its slots already:
// its files run one at a time within them.
const e2eDir = process.env.PLINTH_E2E_DIR ?? '/tmp/plinth-e2e';
const env = {
  ...process.env,
  PLINTH_E2E_DIR: e2eDir,
  PLINTH_TEST_INSTALLER_DATA_DIR: process.env.PLINTH_TEST_INSTALLER_DATA_DIR ?? `${e2eDir}/installer`,
  PLINTH_IMAGE_TEST_CACHE: process.env.PLINTH_IMAGE_TEST_CACHE ?? `${e2eDir}/image-cache`,
};
const args = process.argv.slice(2);
if (args.length > 0) process.exit((await run(args)).status);
const fast = await run(['src', 'test/integration']);
const e2e = await run(['test/e2e', ...(underVmrun() ? ['--no-file-parallelism'] : [])]);
// A log that keeps only its tail (CI's) would show the e2e half alone: say again, last, why
// the first half failed.
if (fast.status !== 0) console.log(`\nThe unit and integration half failed (exit ${fast.status}):\n${failureSummary(fast.output)}`);
process.exit(fast.status || e2e.status);

/** Runs vitest, its output passed through and kept. */
function run(vitestArgs) {
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', ...vitestArgs], { stdio: ['inherit', 'pipe', 'pipe'], env });
    const chunks = [];
    child.stdout.on('data', (c) => (process.stdout.write(c), chunks.push(c)));
    child.stderr.on('data', (c) => (process.stderr.write(c), chunks.push(c)));
    child.on('close', (code) => resolve({ status: code ?? 1, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/** vitest's report of failures (failed tests, unhandled errors) and its totals, at most 80 lines. */
function failureSummary(output) {
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const first = lines.findIndex((l) => /⎯ (Failed Tests|Failed Suites|Unhandled Error)/.test(l));
  const shown = first >= 0 ? lines.slice(first) : lines.slice(-40);
  return (shown.length > 80 ? [...shown.slice(0, 70), '…', ...shown.slice(-9)] : shown).join('\n');
}

/** Whether this process or one above it holds a vmrun slot file open (as test/support/vm-slots.ts finds). */
function underVmrun() {
  const dir = process.env.PLINTH_VM_SLOT_DIR ?? '/tmp';
  const slots = [`${dir}/vmrun.slot1`, `${dir}/vmrun.slot2`];
  for (let pid = process.pid; pid > 1; ) {
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => slots.includes(readlinkOrEmpty(`/proc/${pid}/fd/${fd}`)))) return true;
      pid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return false;
    }
  }
  return false;
}

function readlinkOrEmpty(path) {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}
