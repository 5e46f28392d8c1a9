import { oneOf, type CommandRegistrar } from './context.js';
import { OPERATOR_ACTIONS } from '../lifecycle/states.js';
import { UsageError } from './errors.js';

export const registerMachineAction: CommandRegistrar = (machine, ctx) => {
  machine
    .command('action')
    .description(`perform a lifecycle action: ${OPERATOR_ACTIONS.join(', ')}`)
    .argument('<machine>', 'name or id')
    .argument('<action>', 'the action')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--wipe <mode>', 'release/wipe: none, quick or full')
    .option('--json', 'print JSON')
    .action(async (key: string, action: string, o: { reason?: string; wipe?: string; json?: boolean }) => {
      if (!(OPERATOR_ACTIONS as readonly string[]).includes(action)) {
        throw new UsageError(`unknown action '${action}'; one of: ${OPERATOR_ACTIONS.join(', ')}`);
      }
      const wipe = o.wipe === undefined ? undefined : oneOf(o.wipe, '--wipe', ['none', 'quick', 'full']);
      const r = await ctx.client().action(key, action, { ...(o.reason ? { reason: o.reason } : {}), ...(wipe ? { wipe } : {}) });
      if (o.json) ctx.out.json(r);
      else ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}`);
    });
};
