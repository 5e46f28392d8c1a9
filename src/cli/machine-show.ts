import type { CommandRegistrar } from './context.js';
import { describeMachine } from './machine-format.js';
import type { ScriptRecord } from '../runs/scripts.js';

export const registerMachineShow: CommandRegistrar = (machine, ctx) => {
  machine
    .command('show')
    .description('show one machine: state, identity, facts, last error')
    .argument('<machine>', 'name or id')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const client = ctx.client();
      const m = await client.getMachine(key);
      // The scripts' latest results go with the machine (one per script name).
      const { items } = await client.request<{ items: ScriptRecord[] }>('GET', `/api/v1/machines/${encodeURIComponent(m.id)}/scripts`);
      const latest = items.filter((r, i) => items.findIndex((x) => x.name === r.name) === i);
      if (o.json) return ctx.out.json({ ...m, scripts: latest });
      // Without its own boot method, the machine boots as its appliance says.
      const appliance = !m.bootMethod && m.provider.applianceId ? await client.request<{ bootMethod?: string }>('GET', `/api/v1/appliances/${encodeURIComponent(m.provider.applianceId)}`) : null;
      ctx.out.line(describeMachine(m, appliance?.bootMethod));
      for (const r of latest) ctx.out.line(`Script ${r.name}: ${r.status}${r.timedOut ? ' (timed out)' : ` (exit ${r.exitCode})`} at ${r.finishedAt}`);
    });
};
