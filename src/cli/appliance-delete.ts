import type { CommandRegistrar } from './context.js';

export const registerApplianceDelete: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('delete')
    .alias('rm')
    .description('delete an appliance that controls no machine')
    .argument('<appliance>', 'name or id')
    .action(async (key: string) => {
      await ctx.client().request('DELETE', `/api/v1/appliances/${encodeURIComponent(key)}`);
      ctx.out.line(`deleted ${key}`);
    });
};
