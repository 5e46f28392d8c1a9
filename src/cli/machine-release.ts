import { oneOf, type CommandRegistrar } from './context.js';

export const registerMachineRelease: CommandRegistrar = (machine, ctx) => {
  machine
    .command('release')
    .description('take a deployed machine back: erase its disks (quick by default) and make it available')
    .argument('<machine>', 'name or id')
    .option('--wipe <mode>', 'none, quick (signatures, first and last 64 MiB, discard) or full (every byte / secure erase)')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { wipe?: string; reason?: string; json?: boolean }) => {
      const wipe = o.wipe === undefined ? undefined : oneOf(o.wipe, '--wipe', ['none', 'quick', 'full']);
      const r = await ctx.client().action(key, 'release', { ...(wipe ? { wipe } : {}), ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}`);
    });
};
