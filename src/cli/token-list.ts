import type { CommandRegistrar } from './context.js';

export const registerTokenList: CommandRegistrar = (token, ctx) => {
  token
    .command('list')
    .alias('ls')
    .description('list API tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().listTokens();
      if (o.json) ctx.out.json(items);
      else
        ctx.out.table(
          items.map((t) => ({ name: t.name, role: t.role, created: t.createdAt, lastUsed: t.lastUsedAt, expires: t.expiresAt, revoked: t.revokedAt })),
          ['name', 'role', 'created', 'lastUsed', 'expires', 'revoked'],
        );
    });
};
