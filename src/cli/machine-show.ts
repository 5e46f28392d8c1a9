import type { CommandRegistrar } from './context.js';
import { describeMachine } from './machine-format.js';

export const registerMachineShow: CommandRegistrar = (machine, ctx) => {
  machine
    .command('show')
    .description('show one machine: state, identity, facts, last error')
    .argument('<machine>', 'name or id')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const m = await ctx.client().getMachine(key);
      if (o.json) ctx.out.json(m);
      else ctx.out.line(describeMachine(m));
    });
};
