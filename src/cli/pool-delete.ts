import type { CommandRegistrar } from './context.js';

export const registerPoolDelete: CommandRegistrar = (pool, ctx) => {
  pool
    .command('delete')
    .alias('rm')
    .description('delete a pool no profile uses (refused while machines hold entries, unless --force)')
    .argument('<pool>', 'pool name')
    .option('--force', 'take the entries back from the machines holding them')
    .action(async (name: string, o: { force?: boolean }) => {
      await ctx.client().request<void>('DELETE', `/api/v1/pools/${encodeURIComponent(name)}`, undefined, o.force ? { force: true } : {});
      ctx.out.line(`deleted pool ${name}`);
    });
};
