import type { CommandRegistrar } from './context.js';
import { collect } from './context.js';

export const registerApplianceEnlist: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('enlist')
    .description('make every system behind the appliance a machine linked to it (matched by UUID, serial, MACs)')
    .argument('<appliance>', 'name or id')
    .option('--all', 'every system (the default; kept for scripts written for hardcap)')
    .option('--system <ref>', 'only this system (repeatable)', collect, [])
    .option('--inspect', 'power each machine on into inspection')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { system: string[]; inspect?: boolean; json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: { system: { ref: string }; outcome: string; machine: { name: string; state: string } | null; note: string | null }[] }>(
        'POST',
        `/api/v1/appliances/${encodeURIComponent(key)}/enlist`,
        { ...(o.inspect ? { inspect: true } : {}), ...(o.system.length ? { systems: o.system } : {}) },
      );
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((e) => ({ system: e.system.ref, outcome: e.outcome, machine: e.machine?.name, state: e.machine?.state, note: e.note })),
        ['system', 'outcome', 'machine', 'state', 'note'],
      );
    });
};
