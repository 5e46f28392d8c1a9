import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';

type ApplianceEventView = Record<string, unknown> & {
  at: string;
  actor: string;
  action: string;
  reason: string | null;
};

export const registerApplianceEvents: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('events')
    .description('the history of an appliance: health changes, updates, machines moved')
    .argument('<appliance>', 'name or id')
    .option('--limit <n>', 'at most this many, oldest first (default 100)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { limit?: string; json?: boolean }) => {
      const limit = o.limit ? positiveInt(o.limit, '--limit') : 100;
      const page = await ctx.client().request<{ items: ApplianceEventView[] }>('GET', `/api/v1/appliances/${encodeURIComponent(key)}/events?limit=${Math.min(limit, 1000)}`);
      if (o.json) ctx.out.json(page.items);
      else ctx.out.table(page.items, ['at', 'actor', 'action', 'reason']);
    });
};
