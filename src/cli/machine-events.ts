import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';
import type { EventView } from '../api/client.js';

export const registerMachineEvents: CommandRegistrar = (machine, ctx) => {
  machine
    .command('events')
    .description('the history of a machine: who did what, from which state to which, when and why')
    .argument('<machine>', 'name or id')
    .option('--limit <n>', 'at most this many, oldest first (default: all)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { limit?: string; json?: boolean }) => {
      const limit = o.limit ? positiveInt(o.limit, '--limit') : Infinity;
      const client = ctx.client();
      const items: EventView[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.events(key, { limit: Math.min(1000, limit), ...(cursor ? { cursor } : {}) });
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && items.length < limit);
      const shown = items.slice(0, limit);
      if (o.json) ctx.out.json(shown);
      else {
        ctx.out.table(
          shown.map((e) => ({ at: e.at, actor: e.actor, action: e.action, from: e.fromState, to: e.toState, reason: e.reason ?? (e.details && Object.keys(e.details as object).length ? JSON.stringify(e.details) : null) })),
          ['at', 'actor', 'action', 'from', 'to', 'reason'],
        );
      }
    });
};
