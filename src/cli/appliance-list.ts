import type { CommandRegistrar } from './context.js';

export const registerApplianceList: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('list')
    .alias('ls')
    .description('list appliances (never their passwords)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: Record<string, unknown>[] }>('GET', '/api/v1/appliances');
      if (o.json) ctx.out.json(items);
      else {
        ctx.out.table(
          items.map((a) => ({ ...a, password: a.hasPassword ? 'stored' : '-', error: a.healthError })),
          ['name', 'type', 'address', 'username', 'password', 'site', 'health', 'error'],
        );
      }
    });
};
