import type { HwTuple } from '../core/facts.js';

/**
 * Reads the figures out of what the health script left (script.ts): sysbench's text and
 * fio's JSON, in sections headed `== cpu 0`, `== cpu all 8`, `== memory 0`,
 * `== memory all 8`, `== disk sda read 1M`. The result is eDeploy tuples named as
 * redhat-cip/hardware's benchmarks name them, so that eDeploy-era tools and specs read them:
 *
 *   ('cpu', 'logical_0', 'bogomips', '5187.98')            from /proc/cpuinfo
 *   ('cpu', 'logical_0', 'loops_per_sec', '1512')          sysbench cpu pinned to CPU 0: events / seconds
 *   ('cpu', 'logical', 'loops_per_sec', '2990')            all CPUs at once
 *   ('cpu', 'logical_0', 'bandwidth_1M', '10234')          sysbench memory, 1 MiB blocks, MiB/s
 *   ('cpu', 'logical', 'threaded_bandwidth_1M', '18811')   one thread per CPU
 *   ('disk', 'sda', 'standalone_read_1M_KBps', '795012')   fio, KiB/s
 *   ('disk', 'sda', 'standalone_read_1M_IOps', '776')
 *   ('disk', 'sda', 'standalone_randread_4k_KBps', …), (…, 'standalone_randread_4k_IOps', …)
 *
 * A section whose tool failed or printed nothing recognisable gives no tuple (and a problem).
 */
export interface HealthFigures {
  tuples: HwTuple[];
  /** What could not be read, one line each (a tool's error, a missing section). */
  problems: string[];
}

/** Splits `== header` sections; the header's words, and the text up to the next one. */
function sections(text: string): { head: string[]; body: string }[] {
  const out: { head: string[]; body: string }[] = [];
  let current: { head: string[]; lines: string[] } | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('== ')) {
      if (current) out.push({ head: current.head, body: current.lines.join('\n') });
      current = { head: line.slice(3).trim().split(/\s+/), lines: [] };
    } else current?.lines.push(line);
  }
  if (current) out.push({ head: current.head, body: current.lines.join('\n') });
  return out;
}

const int = (n: number) => String(Math.round(n));

/** sysbench cpu: events over the run's time, as hardware's loops_per_sec. */
function cpuLoops(body: string): number | null {
  const events = /total number of events:\s+(\d+)/.exec(body);
  const time = /total time:\s+([\d.]+)s/.exec(body);
  if (!events || !time || Number(time[1]) <= 0) return null;
  return Number(events[1]) / Number(time[1]);
}

/** sysbench memory: `2912.00 MiB transferred (2817.17 MiB/sec)`. */
function memoryBandwidth(body: string): number | null {
  const m = /transferred \(([\d.]+) MiB\/sec\)/.exec(body);
  return m ? Number(m[1]) : null;
}

/** fio --output-format=json: the job's read bandwidth (KiB/s) and IOPS. */
function fioRead(body: string): { kbps: number; iops: number } | null {
  const start = body.indexOf('{');
  const end = body.lastIndexOf('}');
  if (start < 0 || end < start) return null;
  try {
    const doc = JSON.parse(body.slice(start, end + 1)) as { jobs?: { error?: number; read?: { bw?: number; iops?: number } }[] };
    const job = doc.jobs?.[0];
    if (!job || job.error || typeof job.read?.bw !== 'number' || typeof job.read.iops !== 'number') return null;
    return { kbps: job.read.bw, iops: job.read.iops };
  } catch {
    return null;
  }
}

/** The tuples of one health run, from the files its script left (name → text). */
export function parseHealthFiles(files: Record<string, string>): HealthFigures {
  const tuples: HwTuple[] = [];
  const problems: string[] = [];
  // bogomips per logical CPU, as hardware's get_bogomips reports them.
  let cpu: string | null = null;
  for (const line of (files['cpuinfo.txt'] ?? '').split('\n')) {
    const [k, v] = line.split(':').map((s) => s.trim());
    if (k === 'processor') cpu = v ?? null;
    else if (k === 'bogomips' && cpu !== null && v) tuples.push(['cpu', `logical_${cpu}`, 'bogomips', v]);
  }
  for (const s of sections(files['cpu.txt'] ?? '')) {
    const loops = cpuLoops(s.body);
    const id = s.head[1] === 'all' ? 'logical' : `logical_${s.head[1]}`;
    if (loops === null) problems.push(`cpu ${s.head.slice(1).join(' ')}: no sysbench result`);
    else tuples.push(['cpu', id, 'loops_per_sec', int(loops)]);
  }
  for (const s of sections(files['memory.txt'] ?? '')) {
    const bw = memoryBandwidth(s.body);
    const all = s.head[1] === 'all';
    if (bw === null) problems.push(`memory ${s.head.slice(1).join(' ')}: no sysbench result`);
    else tuples.push(all ? ['cpu', 'logical', 'threaded_bandwidth_1M', int(bw)] : ['cpu', `logical_${s.head[1]}`, 'bandwidth_1M', int(bw)]);
  }
  for (const s of sections(files['disk.txt'] ?? '')) {
    const [, disk, mode, bs] = s.head;
    const r = fioRead(s.body);
    if (!disk || !mode || !bs || r === null) {
      problems.push(`disk ${s.head.slice(1).join(' ')}: no fio result`);
      continue;
    }
    tuples.push(['disk', disk, `standalone_${mode}_${bs}_KBps`, int(r.kbps)], ['disk', disk, `standalone_${mode}_${bs}_IOps`, int(r.iops)]);
  }
  if (!files['cpu.txt']) problems.push('no cpu.txt: the health script did not get to the CPU check');
  return { tuples, problems };
}

/** The comparable figures of a run: `class/id/key` → number (every health tuple is higher-is-better). */
export function healthMetrics(tuples: readonly HwTuple[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [c, id, k, v] of tuples) {
    const n = Number(v);
    if (Number.isFinite(n)) out[`${c}/${id}/${k}`] = n;
  }
  return out;
}
