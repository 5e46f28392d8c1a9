import type { CommandRegistrar } from './context.js';

export const registerApplianceShow: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('show')
    .description('show one appliance (never its password)')
    .argument('<appliance>', 'name or id')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const a = await ctx.client().request<Record<string, unknown>>('GET', `/api/v1/appliances/${encodeURIComponent(key)}`);
      if (o.json) return ctx.out.json(a);
      for (const k of ['name', 'type', 'address', 'username', 'site', 'bootMethod', 'insecure', 'createdAt']) ctx.out.line(`${(k + ':').padEnd(11)} ${a[k] ?? '-'}`);
      ctx.out.line(`${'password:'.padEnd(11)} ${a.hasPassword ? 'stored (encrypted)' : '-'}`);
      ctx.out.line(`${'health:'.padEnd(11)} ${a.health}${a.healthAt ? ` since ${a.healthAt}` : ''}`);
      if (a.healthError) ctx.out.line(`${'error:'.padEnd(11)} ${a.healthError}`);
    });
};
