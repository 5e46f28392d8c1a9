import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';

export const registerMachineRelease: CommandRegistrar = (machine, ctx) => {
  machine
    .command('release')
    .description('take a deployed machine back: erase its disks (quick by default) and make it available')
    .argument('<machine>', 'name or id')
    .option('--wipe <mode>', 'none, quick (signatures, first and last 64 MiB, discard) or full (every byte / secure erase)')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { wipe?: string; reason?: string; json?: boolean }) => {
      if (o.wipe !== undefined && !['none', 'quick', 'full'].includes(o.wipe)) throw new UsageError(`--wipe: '${o.wipe}' must be none, quick or full`);
      const r = await ctx.client().action(key, 'release', { ...(o.wipe ? { wipe: o.wipe } : {}), ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}`);
    });
};
