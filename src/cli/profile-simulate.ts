import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CommandRegistrar } from './context.js';
import { ExitCode, UsageError } from './errors.js';
import { isSourceError, readHwFile } from '../matching/index.js';
import type { SimulationView } from '../profiles/schemas.js';

/** The hardware lists of a directory: `*.hw` (Python literal, as eDeploy wrote them) and `*.json`, by file name. */
async function readHwDir(dir: string): Promise<{ name: string; hw: string[][] }[]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /\.(hw|json)$/.test(f)).sort();
  } catch (e) {
    throw new UsageError(`--hw-dir: cannot read ${dir} (${(e as NodeJS.ErrnoException).code})`);
  }
  if (files.length === 0) throw new UsageError(`--hw-dir: no .hw or .json files in ${dir}`);
  const out: { name: string; hw: string[][] }[] = [];
  for (const f of files) out.push({ name: basename(f).replace(/\.(hw|json)$/, ''), hw: await readHwFile(join(dir, f)) });
  return out;
}

export const registerProfileSimulate: CommandRegistrar = (profile, ctx) => {
  profile
    .command('simulate')
    .description('which machine would get which profile and pool entry if matched now (the inventory, or a directory of .hw files); changes nothing')
    .option('--hw-dir <dir>', 'match these hardware lists as new machines instead of the inventory')
    .option('--json', 'print JSON')
    .action(async (o: { hwDir?: string; json?: boolean }) => {
      let machines: { name: string; hw: string[][] }[] | undefined;
      if (o.hwDir) {
        try {
          machines = await readHwDir(o.hwDir);
        } catch (e) {
          if (!isSourceError(e)) throw e;
          ctx.out.error(`plinth: ${e.message}`);
          throw new ExitCode(2);
        }
      }
      const sim = await ctx.client().request<SimulationView>('POST', '/api/v1/profiles/simulate', machines ? { machines } : {});
      if (o.json) return ctx.out.json(sim);
      ctx.out.table(
        sim.items.map((i) => ({
          machine: i.machine,
          profile: i.profile,
          entry: i.poolEntry ? `${i.poolEntry.pool}[${i.poolEntry.position}]${i.poolEntry.reused ? ' (kept)' : ''}` : null,
          hostname: typeof i.vars.hostname === 'string' ? i.vars.hostname : null,
          error: i.error,
        })),
        ['machine', 'profile', 'entry', 'hostname', 'error'],
      );
      for (const p of sim.profiles) if (p.remainingBefore !== p.remainingAfter) ctx.out.line(`profile ${p.name}: ${p.remainingBefore} left → ${p.remainingAfter}`);
      for (const p of sim.pools) if (p.freeBefore !== p.freeAfter) ctx.out.line(`pool ${p.name}: ${p.freeBefore} free → ${p.freeAfter}`);
    });
};
