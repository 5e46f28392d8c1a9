import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import type { MachineView } from '../api/client.js';

export const registerMachinePower: CommandRegistrar = (machine, ctx) => {
  machine
    .command('power')
    .description('power a machine on, off, soft-off or cycle through its appliance, or read its power state')
    .argument('<machine>', 'name or id')
    .argument('<action>', 'on|off|soft-off|cycle|status')
    .option('--json', 'print JSON')
    .action(async (key: string, action: string, o: { json?: boolean }) => {
      if (!['on', 'off', 'soft-off', 'cycle', 'status'].includes(action)) throw new UsageError(`'${action}' must be on, off, soft-off, cycle or status`);
      const path = `/api/v1/machines/${encodeURIComponent(key)}/power`;
      const r =
        action === 'status'
          ? await ctx.client().request<{ machine: MachineView; job: unknown }>('GET', path)
          : await ctx.client().request<{ machine: MachineView; job: unknown }>('POST', path, { action });
      if (o.json) return ctx.out.json({ machine: r.machine.name, power: r.machine.power, job: r.job });
      ctx.out.line(`${r.machine.name}: ${r.machine.power.state}${r.machine.power.drift ? ` (expected ${r.machine.power.expected})` : ''}`);
    });
};
