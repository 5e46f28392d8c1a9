import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';

interface CheckView {
  appliance: { name: string; health: string; healthError: string | null };
  job: { status: string; error: { message: string } | null };
}

export const registerApplianceCheck: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('check')
    .description("probe an appliance now (read its machines' power, or list its systems) and record its health")
    .argument('<appliance>', 'name or id')
    .option('--wait <seconds>', 'how long to wait for the answer (default 60)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { wait?: string; json?: boolean }) => {
      const waitSeconds = o.wait ? positiveInt(o.wait, '--wait') : undefined;
      const r = await ctx.client().request<CheckView>('POST', `/api/v1/appliances/${encodeURIComponent(key)}/check`, waitSeconds ? { waitSeconds } : {});
      if (o.json) return ctx.out.json(r);
      const a = r.appliance;
      if (r.job.status !== 'succeeded' && r.job.status !== 'failed') return ctx.out.line(`${a.name}: no answer yet (job ${r.job.status}); health ${a.health}`);
      ctx.out.line(`${a.name}: ${a.health}${a.healthError ? ` (${a.healthError})` : ''}`);
    });
};
