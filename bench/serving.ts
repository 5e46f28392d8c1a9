import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ensureBuilt, freePort, startServe } from '../test/support/plinth-process.js';
import { ReadSizes } from '../src/api/send-file.js';
import { cpuSeconds, machineInfo, rssMiB, percentile, record, startNginx, table, today } from './support.js';

/**
 * What one controller process costs to start and to serve files:
 * - `plinth --help` wall time against `node -e 0` in the same run (interleaved, median);
 * - the installer's initramfs downloaded by wrk from the controller (every request traced
 *   against a boot attempt, as during a boot) and from nginx (sendfile) serving the same file,
 *   at 100 and 1000 connections, as a ratio; and from a bare Node HTTP server streaming the
 *   same file (no framework, no trace) at the controller's two read sizes: what Node itself
 *   reaches without sendfile;
 * - the controller's resident memory while 1000 downloads run (sampled every 100 ms).
 */
/** `npm run bench serving --quick`: 5 start-ups each, 5 s per download run (about a minute). */
const QUICK = process.argv.includes('--quick');
const CLI_RUNS = Number(process.env.BENCH_CLI_RUNS ?? (QUICK ? 5 : 15));
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? (QUICK ? 5 : 10));
const CLIENTS = (process.env.BENCH_DOWNLOAD_CLIENTS ?? '100,1000').split(',').map(Number);
const HELD = Number(process.env.BENCH_HELD_DOWNLOADS ?? 1000);
const INITRD_MIB = Number(process.env.BENCH_INITRD_MIB ?? 87);

function wallMs(argv: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`node ${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return performance.now() - t0;
}

/** Peak resident memory of a short command in MiB (GNU time), or null where it is not installed. */
function maxRssMiB(argv: string[]): number | null {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const kb = Number(/(\d+)\s*$/.exec(r.stderr ?? '')?.[1]);
  return r.status === 0 && kb > 0 ? Math.round(kb / 1024) : null;
}

function cliStartup() {
  const node: number[] = [];
  const help: number[] = [];
  for (let i = 0; i < CLI_RUNS; i++) {
    node.push(wallMs(['-e', '0']));
    help.push(wallMs([BIN, '--help']));
  }
  node.sort((a, b) => a - b);
  help.sort((a, b) => a - b);
  const nodeMs = percentile(node, 50);
  const helpMs = percentile(help, 50);
  return { runs: CLI_RUNS, nodeMs: Math.round(nodeMs), helpMs: Math.round(helpMs), ratio: Math.round((helpMs / nodeMs) * 10) / 10, helpRssMiB: maxRssMiB([BIN, '--help']), nodeRssMiB: maxRssMiB(['-e', '0']) };
}

/**
 * The yardstick for the controller's own serving: node:http and a read stream of `readBytes`
 * reads piped to the socket, in a process of its own, nothing else. Returns its URL and a stop.
 */
async function startBareNode(file: string, readBytes: number): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const code = `const http = require('node:http'), fs = require('node:fs'); const size = fs.statSync(process.argv[1]).size;
http.createServer((req, res) => { res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' }); fs.createReadStream(process.argv[1], { highWaterMark: ${readBytes} }).pipe(res); }).listen(${port}, '127.0.0.1', () => console.log('listening'));`;
  const child = spawn(process.execPath, ['-e', code, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`the bare node server exited with ${c}`)));
  });
  return { url: `http://127.0.0.1:${port}/initrd.img`, stop: () => child.kill() };
}

/** wrk's aggregate transfer rate in MiB/s for `connections` clients downloading `url` again and again. */
function wrk(url: string, connections: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '60s', url]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const m = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
      if (!m) return reject(new Error(`unexpected wrk output:\n${out}`));
      const factor = { B: 1 / 2 ** 20, KB: 1 / 1024, MB: 1, GB: 1024 }[m[2] as 'B' | 'KB' | 'MB' | 'GB'];
      resolve(Number(m[1]) * factor);
    });
  });
}

/** Largest resident memory of `pid` (MiB) while `work` runs. */
async function peakRssDuring<T>(pid: number, work: Promise<T>): Promise<{ value: T; peakMiB: number }> {
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, rssMiB(pid).rss);
  };
  const timer = setInterval(sample, 100);
  try {
    const value = await work;
    sample();
    return { value, peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Controller RSS with `n` downloads open at once whose clients have stopped reading (slow
 * machines): every download holds what it has read and not yet handed to its socket.
 */
async function heldOpen(pid: number, url: string, n: number): Promise<{ downloads: number; rssMiB: number }> {
  const { request } = await import('node:http');
  const open: { destroy(): void }[] = [];
  let started = 0;
  try {
    await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve, reject) => {
          const req = request(url, { agent: false }, (res) => {
            if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
            started++;
            res.once('data', () => (res.pause(), resolve()));
          });
          req.on('error', reject);
          req.end();
          open.push(req);
        }),
      ),
    );
    // Let every stream fill its socket and its own buffers.
    await new Promise((r) => setTimeout(r, 5000));
    return { downloads: started, rssMiB: rssMiB(pid).rss };
  } finally {
    for (const r of open) r.destroy();
  }
}

/** The initramfs URL a new machine's boot script names (with its boot attempt, so every download is traced). */
async function initrdUrl(base: string): Promise<string> {
  const chain = await (await fetch(`${base}/boot.ipxe`, { headers: { 'user-agent': 'iPXE/1.21.1+' } })).text();
  const nonce = /&chain=([A-Za-z0-9_-]+)&/.exec(chain)![1];
  const script = await (await fetch(`${base}/boot/machine.ipxe?serial=BENCH-SERVE-1&mac=02:be:00:00:00:01&chain=${nonce}`, { headers: { 'user-agent': 'iPXE/1.21.1+' } })).text();
  const url = /initrd --name initrd\.img (\S+)/.exec(script)?.[1];
  if (!url) throw new Error(`the machine was not sent to the installer:\n${script}`);
  return url;
}

export async function run(): Promise<string> {
  ensureBuilt();
  const load0 = loadavg()[0]!;
  const cli = cliStartup();
  console.log(JSON.stringify({ cli }));

  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-serving-'));
  const dir = join(dataDir, 'boot', 'installer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(8 * 2 ** 20));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(INITRD_MIB * 2 ** 20));
  for (const d of [dataDir, join(dataDir, 'boot'), dir]) chmodSync(d, 0o755);
  const port = await freePort();
  const serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `127.0.0.1:${port}`, PLINTH_LOG_LEVEL: 'warn' });
  // nginx as it is deployed (a worker per core), and with one worker: the controller is one
  // process, so the second is the same-resources yardstick.
  const nginxPort = await freePort();
  const stopNginx = await startNginx({ root: dir, port: nginxPort, probe: 'initrd.img' });
  const nginx1Port = await freePort();
  const stopNginx1 = await startNginx({ root: dir, port: nginx1Port, probe: 'initrd.img', workers: 1 });
  // Node at the controller's two read sizes (send-file.ts ReadSizes): 1 MiB while the memory
  // budget lasts, 32 KiB beyond it.
  const bare = await startBareNode(join(dir, 'initrd.img'), ReadSizes.LARGE);
  const bareSmall = await startBareNode(join(dir, 'initrd.img'), ReadSizes.SMALL);
  const downloads: Record<string, number | string>[] = [];
  let held = { downloads: 0, rssMiB: 0 };
  try {
    const url = await initrdUrl(serve.url);
    for (const n of CLIENTS) {
      const cpu0 = cpuSeconds(serve.child.pid!);
      const c = await peakRssDuring(serve.child.pid!, wrk(url, n, WRK_SECONDS));
      const cpu = (cpuSeconds(serve.child.pid!) - cpu0) / WRK_SECONDS;
      const ng = await wrk(`http://127.0.0.1:${nginxPort}/initrd.img`, n, WRK_SECONDS);
      const ng1 = await wrk(`http://127.0.0.1:${nginx1Port}/initrd.img`, n, WRK_SECONDS);
      const node = await wrk(bare.url, n, WRK_SECONDS);
      const nodeSmall = await wrk(bareSmall.url, n, WRK_SECONDS);
      downloads.push({
        clients: n,
        controllerMiBps: Math.round(c.value),
        controllerCpu: `${Math.round(cpu * 100)}%`,
        controllerPeakRssMiB: c.peakMiB,
        nginxMiBps: Math.round(ng),
        ratio: `${Math.round((c.value / ng) * 100)}%`,
        nginx1WorkerMiBps: Math.round(ng1),
        ratio1Worker: `${Math.round((c.value / ng1) * 100)}%`,
        bareNode1MiBMiBps: Math.round(node),
        bareNode1MiBVsNginx: `${Math.round((node / ng) * 100)}%`,
        bareNode32KiBMiBps: Math.round(nodeSmall),
        bareNode32KiBVsNginx: `${Math.round((nodeSmall / ng) * 100)}%`,
      });
      console.log(JSON.stringify(downloads.at(-1)));
    }
    held = await heldOpen(serve.child.pid!, url, HELD);
    console.log(JSON.stringify({ held }));
  } finally {
    stopNginx();
    stopNginx1();
    bare.stop();
    bareSmall.stop();
    await serve.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const load1 = loadavg()[0]!;
  let md = `# Serving — ${today()}${QUICK ? ' (quick)' : ''}\n\n${machineInfo()}; load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end (the machine is shared).\n\n`;
  md += `## CLI start-up\n\n${cli.runs} runs each, interleaved; median wall time.\n\n`;
  md += table(
    [
      { command: '`node -e 0`', wall: `${cli.nodeMs} ms`, rss: cli.nodeRssMiB === null ? '–' : `${cli.nodeRssMiB} MiB` },
      { command: '`plinth --help`', wall: `${cli.helpMs} ms (${cli.ratio}×)`, rss: cli.helpRssMiB === null ? '–' : `${cli.helpRssMiB} MiB` },
    ],
    ['command', 'wall', 'rss'],
  );
  md += `\n## Artifacts\n\nwrk (2 threads) with N connections downloads a ${INITRD_MIB} MiB initramfs (random bytes) for ${WRK_SECONDS} s from one controller (SQLite; each request traced against a boot attempt), then from nginx (sendfile on, worker_processes auto) serving the same file, then from nginx with one worker (the controller is one process), then from a bare Node HTTP server (node:http, a read stream piped to the socket, no framework, no trace) with 1 MiB reads and with 32 KiB reads: what Node reaches without sendfile at the controller's two read sizes (1 MiB while its 32 MiB budget lasts, 32 KiB beyond it, src/api/send-file.ts), the controller's own ceiling. The controller's peak resident memory is sampled every 100 ms during its run; its CPU is CPU-seconds per second of that run (100% = one core). wrk, controller and nginx share the machine's cores.\n\n`;
  md += table(downloads, ['clients', 'controllerMiBps', 'controllerCpu', 'controllerPeakRssMiB', 'nginxMiBps', 'ratio', 'nginx1WorkerMiBps', 'ratio1Worker', 'bareNode1MiBMiBps', 'bareNode1MiBVsNginx', 'bareNode32KiBMiBps', 'bareNode32KiBVsNginx']);
  md += `\n${held.downloads} downloads held open (clients that read their first bytes and stop, as slow machines do; 5 s to fill their buffers): controller RSS ${held.rssMiB} MiB.\n`;
  return record(QUICK ? 'serving-quick' : 'serving', md, { date: today(), machine: machineInfo(), loadAverage: [load0, load1], cli, initrdMiB: INITRD_MIB, downloads, held });
}
