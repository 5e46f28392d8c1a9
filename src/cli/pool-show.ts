import type { CommandRegistrar } from './context.js';
import type { PoolEntryView, PoolView } from '../profiles/schemas.js';

export const registerPoolShow: CommandRegistrar = (pool, ctx) => {
  pool
    .command('show')
    .description('show a pool and its entries, with the machine holding each')
    .argument('<pool>', 'pool name')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const client = ctx.client();
      const path = `/api/v1/pools/${encodeURIComponent(name)}`;
      const p = await client.request<PoolView>('GET', path);
      const entries: PoolEntryView[] = [];
      for (let cursor: string | null | undefined; cursor !== null; ) {
        const page: { items: PoolEntryView[]; nextCursor: string | null } = await client.request('GET', `${path}/entries`, undefined, { limit: 1000, cursor });
        entries.push(...page.items);
        cursor = page.nextCursor;
      }
      if (o.json) return ctx.out.json({ ...p, items: entries });
      ctx.out.line(`Pool ${p.name}: ${p.entries.total} entries, ${p.entries.free} free, ${p.entries.held} held; used by ${p.profiles.join(', ') || 'no profile'}`);
      if (p.model) ctx.out.line(`Model: ${JSON.stringify(p.model)}`);
      ctx.out.table(
        entries.map((e) => ({ position: e.position, machine: e.machine?.name ?? (e.used ? '(used)' : null), entry: JSON.stringify(e.data) })),
        ['position', 'machine', 'entry'],
      );
    });
};
