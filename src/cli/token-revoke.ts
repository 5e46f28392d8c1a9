import type { CommandRegistrar } from './context.js';

export const registerTokenRevoke: CommandRegistrar = (token, ctx) => {
  token
    .command('revoke')
    .description('revoke an API token')
    .argument('<token>', 'name or id')
    .action(async (key: string) => {
      const t = await ctx.client().revokeToken(key);
      ctx.out.line(`revoked ${t.name}`);
    });
};
