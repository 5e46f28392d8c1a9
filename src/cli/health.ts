import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { seconds } from './script.js';
import type { HealthRecord } from '../health/service.js';
import type { HealthComparison } from '../health/compare.js';

const enc = encodeURIComponent;
const collect = (v: string, p: string[]) => [...p, v];

function fraction(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > max) throw new UsageError(`${flag}: '${v}' must be a number from 0 to ${max}`);
  return n;
}

/** `plinth machine health NAME…`: a health check (sysbench cpu and memory, fio reads) on available machines. */
export const registerMachineHealth: CommandRegistrar = (machine, ctx) => {
  machine
    .command('health')
    .description('run a health check on available machines in the installer (docs/health.md): sysbench cpu and memory, fio reading each disk (read-only); the figures go into the facts and `plinth health compare`')
    .argument('<machines...>', 'names or ids')
    .option('--cpu-seconds <n>', 'sysbench cpu time, per logical CPU and for all (default 10)')
    .option('--memory-seconds <n>', 'sysbench memory time, one thread and all (default 5)')
    .option('--disk-seconds <n>', 'fio time per disk and mode; 0: no disk check (default 10)')
    .option('--disk <name>', 'a disk to read (kernel name: sda, nvme0n1; repeatable; default every disk)', collect, [])
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (keys: string[], o: { cpuSeconds?: string; memorySeconds?: string; diskSeconds?: string; disk: string[]; reason?: string; json?: boolean }) => {
      const cpuSeconds = seconds(o.cpuSeconds, '--cpu-seconds', 1, 600);
      const memorySeconds = seconds(o.memorySeconds, '--memory-seconds', 1, 600);
      const diskSeconds = seconds(o.diskSeconds, '--disk-seconds', 0, 600);
      const health = {
        ...(cpuSeconds !== undefined ? { cpuSeconds } : {}),
        ...(memorySeconds !== undefined ? { memorySeconds } : {}),
        ...(diskSeconds !== undefined ? { diskSeconds } : {}),
        ...(o.disk.length ? { disks: o.disk } : {}),
      };
      const started = [];
      for (const key of keys) {
        const r = await ctx.client().action(key, 'inspect', { health, ...(o.reason ? { reason: o.reason } : {}) });
        started.push(r);
        if (!o.json) ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}: health check`);
      }
      if (o.json) ctx.out.json(started);
    });
};

/** `plinth health show|compare`: health figures of a machine, and a profile's machines compared. */
export const registerHealthCommands: CommandRegistrar = (health, ctx) => {
  health
    .command('show')
    .description("a machine's health runs: the figures as eDeploy tuples, newest run first")
    .argument('<machine>', 'name or id')
    .option('--all', 'every run, not only the latest')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { all?: boolean; json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: HealthRecord[] }>('GET', `/api/v1/machines/${enc(key)}/health${o.all ? '' : '?limit=1'}`);
      if (o.json) return ctx.out.json(items);
      if (items.length === 0) return ctx.out.line(`${key}: no health run yet (plinth machine health ${key})`);
      for (const r of items) {
        ctx.out.line(`${r.machine}: run ${r.runId} ${r.status} at ${r.finishedAt} (${(r.durationMs / 1000).toFixed(0)} s)`);
        ctx.out.table(
          r.tuples.map(([c, id, k, v]) => ({ class: c, id, key: k, value: v })),
          ['class', 'id', 'key', 'value'],
        );
        for (const p of r.problems) ctx.out.line(`  problem: ${p}`);
      }
    });

  health
    .command('compare')
    .description("compare the latest health figures of a profile's machines; an outlier is below median − k·MAD and more than --min-drop below the median")
    .argument('<profile>', 'the profile')
    .option('--k <n>', 'scaled MADs below the median (default 3)')
    .option('--min-drop <fraction>', 'how far below the median a value must also be (default 0.1)')
    .option('--json', 'print JSON')
    .action(async (profile: string, o: { k?: string; minDrop?: string; json?: boolean }) => {
      const k = fraction(o.k, '--k', 100);
      const minDrop = fraction(o.minDrop, '--min-drop', 1);
      const q = new URLSearchParams({ ...(k !== undefined ? { k: String(k) } : {}), ...(minDrop !== undefined ? { minDrop: String(minDrop) } : {}) }).toString();
      const c = await ctx.client().request<HealthComparison & { profile: string; runs: HealthRecord[]; missing: string[] }>('GET', `/api/v1/profiles/${enc(profile)}/health${q ? `?${q}` : ''}`);
      if (o.json) return ctx.out.json(c);
      const machines = c.runs.map((r) => r.machine);
      ctx.out.table(
        c.figures.map((f) => ({
          figure: f.figure,
          median: Math.round(f.median),
          ...Object.fromEntries(f.machines.map((m) => [m.machine, `${Math.round(m.value)}${m.outlier ? ' !' : ''}`])),
        })),
        ['figure', 'median', ...machines],
      );
      const flagged = Object.entries(c.outliers);
      if (machines.length < 3) ctx.out.line(`${machines.length} machine(s) with a health run: outliers need at least 3 to compare`);
      ctx.out.line(flagged.length ? flagged.map(([m, f]) => `outlier ${m}: ${f.join(', ')}`).join('\n') : 'no outliers');
      if (c.missing.length) ctx.out.line(`no health run: ${c.missing.join(', ')}`);
    });
};
