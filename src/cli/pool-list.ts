import type { CommandRegistrar } from './context.js';
import type { PoolView } from '../profiles/schemas.js';

export const registerPoolList: CommandRegistrar = (pool, ctx) => {
  pool
    .command('list')
    .alias('ls')
    .description("list pools (eDeploy's CMDB) with their free and held entries")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: PoolView[] }>('GET', '/api/v1/pools');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((p) => ({ name: p.name, entries: p.entries.total, free: p.entries.free, held: p.entries.held, profiles: p.profiles.join(',') || null, form: p.model ? 'generate' : 'entries' })),
        ['name', 'entries', 'free', 'held', 'profiles', 'form'],
      );
    });
};
