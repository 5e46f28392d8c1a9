import type { CommandRegistrar } from './context.js';
import { describeMachine } from './machine-format.js';

export const registerMachineShow: CommandRegistrar = (machine, ctx) => {
  machine
    .command('show')
    .description('show one machine: state, identity, facts, last error')
    .argument('<machine>', 'name or id')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const client = ctx.client();
      const m = await client.getMachine(key);
      if (o.json) return ctx.out.json(m);
      // Without its own boot method, the machine boots as its appliance says.
      const appliance = !m.bootMethod && m.provider.applianceId ? await client.request<{ bootMethod?: string }>('GET', `/api/v1/appliances/${encodeURIComponent(m.provider.applianceId)}`) : null;
      ctx.out.line(describeMachine(m, appliance?.bootMethod));
    });
};
