import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { ROOT } from '../test/support/plinth-process.js';

/** Shared pieces of the benchmarks: load generation, process memory, result files. */
export interface LoadResult {
  scenario: string;
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
}

/** Drives `paths` (chosen per request by `pick`) with N connections for D seconds. */
export async function load(opts: {
  scenario: string;
  url: string;
  token?: string;
  connections: number;
  durationS: number;
  pick: () => string;
}): Promise<LoadResult> {
  const r = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    requests: [{ setupRequest: (req) => ({ ...req, path: opts.pick() }) }],
  });
  return {
    scenario: opts.scenario,
    connections: opts.connections,
    durationS: opts.durationS,
    requests: r.requests.total,
    rps: Math.round(r.requests.average),
    p50ms: r.latency.p50,
    p99ms: r.latency.p99,
    maxMs: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

/** Resident memory of a process now and at its peak, in MiB. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

/** Total CPU seconds (user+system) a process has used. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** BENCH_CPU_PROF=DIR: node arguments that make a controller write a CPU profile of its run there when it stops. */
export const cpuProfArgs = (): string[] => (process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []);

/** The machine's load averages (1, 5, 15 min), to print next to figures from a shared machine. */
export const loadAverage = () => loadavg().map((l) => l.toFixed(1)).join(' / ');

export const machineInfo = () => `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;

export const today = () => new Date().toISOString().slice(0, 10);

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const head = `| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|\n`;
  return head + rows.map((r) => `| ${columns.map((c) => String(r[c] ?? '')).join(' | ')} |`).join('\n') + '\n';
}

/** Writes bench/results/<date>-<suite>.md and .json. */
export function record(suite: string, markdown: string, data: unknown): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${today()}-${suite}`);
  writeFileSync(`${base}.md`, markdown);
  writeFileSync(`${base}.json`, JSON.stringify(data, null, 2) + '\n');
  return `${base}.md`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * nginx as the reference file server (sendfile on, a worker per core unless `workers`) serving `root` on
 * `port`, plus any further `servers` blocks; resolves once `probe` (a file under root)
 * answers, and returns the function that stops it.
 */
export async function startNginx(opts: { root: string; port: number; probe: string; servers?: string; workers?: number }): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'plinth-nginx-'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes ${opts.workers ?? 'auto'};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir};
  scgi_temp_path ${dir};
  server { listen 127.0.0.1:${opts.port}; root ${opts.root}; }
  ${opts.servers ?? ''}
}
`,
  );
  const child = spawn('nginx', ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${opts.port}/${opts.probe}`, { method: 'HEAD' }).then((r) => r.ok, () => false);
    if (ok) break;
    if (i >= 100) {
      child.kill('SIGTERM');
      throw new Error(`nginx did not serve ${opts.probe} within 10 s (see ${dir}/error.log)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return () => child.kill('SIGTERM');
}
