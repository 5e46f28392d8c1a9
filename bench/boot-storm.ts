import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync, existsSync, copyFileSync, statSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ensureBuilt, freePort, startServe, ROOT } from '../test/support/plinth-process.js';
import { cpuProfArgs, loadAverage, machineInfo, percentile, record, rssMiB, cpuSeconds, startNginx, table, today } from './support.js';

/**
 * Boot storm: N simulated machines at once, each doing what iPXE does — fetch /boot.ipxe,
 * its own script, the installer kernel and initramfs — against one controller; then the same
 * artifact downloads against nginx serving the same files on the same machine, as a ratio.
 */
const QUICK = process.argv.includes('--quick');
const SIZES = (process.env.BENCH_STORM ?? '100,500,1000').split(',').map(Number);

function artifacts(dir: string): { kernel: string; initrd: string; note: string } {
  mkdirSync(dir, { recursive: true });
  const built = join(ROOT, 'var', 'boot', 'installer');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  if (existsSync(join(built, 'vmlinuz')) && existsSync(join(built, 'initrd.img')) && !process.env.BENCH_SYNTHETIC) {
    copyFileSync(join(built, 'vmlinuz'), kernel);
    copyFileSync(join(built, 'initrd.img'), initrd);
    return { kernel, initrd, note: 'the installer built by `plinth installer build`' };
  }
  writeFileSync(kernel, randomBytes(8 * 2 ** 20));
  writeFileSync(initrd, randomBytes(Number(process.env.BENCH_INITRD_MIB ?? 64) * 2 ** 20));
  return { kernel, initrd, note: 'random files the size of a kernel (8 MiB) and an initramfs' };
}

/** nginx in front of a controller (`upstream`) that answers artifacts with X-Accel-Redirect into `dataDir`. */
const frontServer = (port: number, upstream: string, dataDir: string) => `server {
    listen 127.0.0.1:${port};
    location / { proxy_pass ${upstream}; proxy_set_header Host $http_host; proxy_buffering off; }
    location /_plinth-data/ { internal; alias ${dataDir}/; }
  }`;

async function get(agent: Agent, url: string): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  const res = await request(url, { dispatcher: agent, headers: { 'user-agent': 'iPXE/1.21.1+' } });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
  return { ms: performance.now() - t0, body };
}

/** wrk's aggregate transfer rate in MiB/s for `connections` clients downloading `url` again and again. */
function wrk(url: string, connections: number, seconds: number): number {
  const out = execFileSync('wrk', ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '60s', url], { encoding: 'utf8' });
  const m = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  if (!m) throw new Error(`unexpected wrk output:\n${out}`);
  const factor = { B: 1 / 2 ** 20, KB: 1 / 1024, MB: 1, GB: 1024 }[m[2] as 'B' | 'KB' | 'MB' | 'GB'];
  return Number(m[1]) * factor;
}

interface StormResult {
  clients: number;
  scenario: string;
  scriptRps: number;
  scriptP50ms: number;
  scriptP99ms: number;
  /** The controller's CPU-seconds per 1000 boots (/boot.ipxe and the machine's script each). */
  cpuSPer1000: number;
  nginxScriptP99ms: number | '–';
  controllerMiBps: number | '–';
  nginxMiBps: number | '–';
  ratio: string;
  frontedMiBps: number | '–';
  frontedRatio: string;
}

const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 10);
const PACED_RATE = Number(process.env.BENCH_PACED_RATE ?? 200);

/**
 * N machines at once fetch /boot.ipxe and their own script (each over its own connection);
 * then N clients download the initramfs from the controller (each request traced against a
 * boot attempt, as during a real boot) and from nginx, for the same time.
 */
async function storm(base: string, nginxBase: string, frontBase: string, controllerPid: number, n: number, mac: (i: number) => string, scenario: string, arrivalsPerS = 0): Promise<StormResult> {
  const cpu0 = cpuSeconds(controllerPid);
  // A thousand connects at once overflow the listen backlog on a busy machine: SYNs are retried for seconds.
  const agent = new Agent({ connections: n, pipelining: 1, keepAliveTimeout: 60_000, connect: { timeout: 60_000 } });
  const lat: number[] = [];
  const initrdUrls: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      // Paced: machine i arrives at i / arrivalsPerS seconds (as power-on through BMCs spreads them).
      if (arrivalsPerS > 0) await new Promise((r) => setTimeout(r, (i / arrivalsPerS) * 1000));
      const chain = await get(agent, `${base}/boot.ipxe`);
      lat.push(chain.ms);
      const nonce = /&chain=([A-Za-z0-9_-]+)&/.exec(chain.body)![1];
      const s = await get(agent, `${base}/boot/machine.ipxe?serial=STORM-${scenario.replace(/\W+/g, '')}-${i}&mac=${mac(i)}&chain=${nonce}`);
      lat.push(s.ms);
      const initrd = /initrd --name initrd\.img (\S+)/.exec(s.body)?.[1];
      if (!initrd) throw new Error(`machine ${i} was not sent to the installer:\n${s.body}`);
      initrdUrls.push(initrd);
    }),
  );
  const scriptsS = (performance.now() - t0) / 1000;
  // The controller's CPU for the N boots' two requests each (the artifact downloads come after).
  const bootCpuS = cpuSeconds(controllerPid) - cpu0;
  await agent.close();
  lat.sort((a, b) => a - b);
  const artifacts = arrivalsPerS === 0;
  // The yardstick for the script figures: the same N clients at once, each fetching two
  // small static files from nginx over its own connection (no database, no decision).
  const nginxLat: number[] = [];
  if (artifacts) {
    const ngAgent = new Agent({ connections: n, pipelining: 1, keepAliveTimeout: 60_000, connect: { timeout: 60_000 } });
    await Promise.all(
      Array.from({ length: n }, async () => {
        nginxLat.push((await get(ngAgent, `${nginxBase}/chain.ipxe`)).ms);
        nginxLat.push((await get(ngAgent, `${nginxBase}/script.ipxe`)).ms);
      }),
    );
    await ngAgent.close();
    nginxLat.sort((a, b) => a - b);
  }
  const controllerMiBps = artifacts ? wrk(initrdUrls[0]!, n, WRK_SECONDS) : NaN;
  const nginxMiBps = artifacts ? wrk(`${nginxBase}/initrd.img`, n, WRK_SECONDS) : NaN;
  const frontedMiBps = artifacts ? wrk(initrdUrls[0]!.replace(base, frontBase), n, WRK_SECONDS) : NaN;
  return {
    clients: n,
    scenario,
    scriptRps: Math.round((2 * n) / scriptsS),
    scriptP50ms: Math.round(percentile(lat, 50) * 10) / 10,
    scriptP99ms: Math.round(percentile(lat, 99) * 10) / 10,
    cpuSPer1000: Math.round((bootCpuS / n) * 1000 * 10) / 10,
    nginxScriptP99ms: artifacts ? Math.round(percentile(nginxLat, 99) * 10) / 10 : '–',
    controllerMiBps: artifacts ? Math.round(controllerMiBps) : '–',
    nginxMiBps: artifacts ? Math.round(nginxMiBps) : '–',
    ratio: artifacts ? `${Math.round((controllerMiBps / nginxMiBps) * 100)}%` : '–',
    frontedMiBps: artifacts ? Math.round(frontedMiBps) : '–',
    frontedRatio: artifacts ? `${Math.round((frontedMiBps / nginxMiBps) * 100)}%` : '–',
  };
}

export async function run(): Promise<string> {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-storm-'));
  const files = artifacts(join(dataDir, 'boot', 'installer'));
  // What nginx serves in place of the two scripts, for the yardstick (sizes of real ones).
  writeFileSync(join(dataDir, 'boot', 'installer', 'chain.ipxe'), '#!ipxe\n'.padEnd(300, '#') + '\n');
  writeFileSync(join(dataDir, 'boot', 'installer', 'script.ipxe'), '#!ipxe\n'.padEnd(900, '#') + '\n');
  // nginx's workers must be able to read the files.
  for (const d of [dataDir, join(dataDir, 'boot'), join(dataDir, 'boot', 'installer')]) chmodSync(d, 0o755);
  const port = await freePort();
  // The storm measures the boot path, not the enrolment rate limit (enrolment.burst, docs/security.md).
  const prof = cpuProfArgs();
  const serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `127.0.0.1:${port}`, PLINTH_LOG_LEVEL: 'warn', PLINTH_ENROLMENT_BURST: '100000' }, [], { nodeArgs: prof });
  // A second controller on the same database and data directory, answering artifacts with
  // X-Accel-Redirect for the nginx in front of it (docs/boot.md).
  const accelPort = await freePort();
  const accel = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `127.0.0.1:${accelPort}`, PLINTH_LOG_LEVEL: 'warn', PLINTH_ACCEL_REDIRECT: '/_plinth-data/' });
  const nginxPort = await freePort();
  const frontPort = await freePort();
  const stopNginx = await startNginx({ root: join(dataDir, 'boot', 'installer'), port: nginxPort, probe: 'vmlinuz', servers: frontServer(frontPort, accel.url, dataDir) });
  const frontBase = `http://127.0.0.1:${frontPort}`;
  const probe = await request(`${frontBase}/boot/installer/initrd.img`, { method: 'HEAD' });
  if (probe.statusCode !== 200 || Number(probe.headers['content-length']) !== statSync(files.initrd).size) throw new Error(`nginx in front of the controller: HTTP ${probe.statusCode}`);
  await probe.body.dump();

  const results: StormResult[] = [];
  const load0 = loadAverage();
  const cpu0 = cpuSeconds(serve.child.pid!);
  try {
    for (const n of SIZES) {
      const mac = (i: number) => `02:${n.toString(16).padStart(2, '0').slice(-2)}:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      // Unknown machines: every one is enrolled and sent to inspection on its first request.
      results.push(await storm(serve.url, `http://127.0.0.1:${nginxPort}`, frontBase, serve.child.pid!, n, mac, 'new'));
      console.log(JSON.stringify(results.at(-1)), `load ${loadAverage()}`);
      // The same machines again, now known and with their inspection pending (a mass re-boot).
      results.push(await storm(serve.url, `http://127.0.0.1:${nginxPort}`, frontBase, serve.child.pid!, n, mac, 'known'));
      console.log(JSON.stringify(results.at(-1)));
      // New machines again, but arriving at PACED_RATE a second rather than all in the same instant.
      const paced = (i: number) => mac(i).replace(/^02:/, '06:');
      results.push(await storm(serve.url, `http://127.0.0.1:${nginxPort}`, frontBase, serve.child.pid!, n, paced, `new, ${PACED_RATE}/s`, PACED_RATE));
      console.log(JSON.stringify(results.at(-1)));
    }
  } finally {
    stopNginx();
    await accel.stop();
  }
  const mem = rssMiB(serve.child.pid!);
  const cpu = cpuSeconds(serve.child.pid!) - cpu0;
  await serve.stop();
  const k = statSync(files.kernel).size;
  const i = statSync(files.initrd).size;
  rmSync(dataDir, { recursive: true, force: true });
  let md = `# Boot storm — ${today()}${QUICK ? ' (quick)' : ''}\n\n${machineInfo()}. One controller (SQLite), artifacts: ${files.note}: kernel ${(k / 2 ** 20).toFixed(1)} MiB, initramfs ${(i / 2 ** 20).toFixed(1)} MiB.\n`;
  md += `Scripts: N simulated machines at once each fetch /boot.ipxe and then their own script over their own connection; "new" machines are enrolled and sent to inspection by that request (several database writes each), "known" ones boot again with their inspection pending (a new boot attempt and run token each); "new, R/s" are new machines arriving R a second instead of all in the same instant (script figures only). "cpuSPer1000": the controller's CPU-seconds (user + system) while the N machines fetched their two scripts, per 1000 machines. Artifacts: wrk with N connections downloads the initramfs for ${WRK_SECONDS} s from the controller (every request traced against a boot attempt), then from nginx (sendfile on, worker_processes auto) serving the same file, then through that nginx in front of a second controller on the same data (PLINTH_ACCEL_REDIRECT: the controller traces and answers with X-Accel-Redirect, nginx sends the bytes; "fronted"). wrk, controller and nginx share the machine's cores. The yardstick for the script figures, "nginxScriptP99ms": the same N clients at once, each over its own connection, fetching two small static files from that nginx (no database, no decision): what N simultaneous arrivals cost on this machine at this load before Plinth does anything. Load average at the start and end: ${load0} → ${loadAverage()}.\n\n`;
  md += table(results as unknown as Record<string, unknown>[], ['clients', 'scenario', 'scriptRps', 'scriptP50ms', 'scriptP99ms', 'cpuSPer1000', 'nginxScriptP99ms', 'controllerMiBps', 'nginxMiBps', 'ratio', 'frontedMiBps', 'frontedRatio']);
  md += `\nController peak RSS ${mem.peak} MiB, ${Math.round(cpu)} CPU-seconds over all runs.\n`;
  return record(QUICK ? 'boot-storm-quick' : 'boot-storm', md, { date: today(), machine: machineInfo(), kernelBytes: k, initrdBytes: i, results, peakRssMiB: mem.peak });
}
