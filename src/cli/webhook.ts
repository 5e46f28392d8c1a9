import type { CommandRegistrar } from './context.js';
import { collect, positiveInt } from './context.js';

/** `plinth webhook add|list|remove|deliveries`: webhooks and their deliveries (admin). */
export const registerWebhookCommands: CommandRegistrar = (webhook, ctx) => {
  webhook
    .command('add')
    .description('add a webhook: signed CloudEvents POSTed to URL; prints its secret once')
    .argument('<url>', 'http:// or https:// URL that receives the events')
    .option('--event <prefix>', 'event type prefix it receives (repeatable; default: all)', collect)
    .option('--secret <whsec>', 'the signing secret (whsec_ and base64); generated when left out')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { event?: string[]; secret?: string; json?: boolean }) => {
      const w = await ctx.client().addWebhook({ url, ...(o.event?.length ? { events: o.event } : {}), ...(o.secret ? { secret: o.secret } : {}) });
      if (o.json) return ctx.out.json(w);
      ctx.out.line(`webhook ${w.id} → ${w.url} (${w.events.join(', ')})`);
      ctx.out.line(`secret: ${w.secret}`);
      ctx.out.line('(shown once: verify the webhook-signature header with it)');
    });

  webhook
    .command('list')
    .description('the webhooks (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().listWebhooks();
      if (o.json) ctx.out.json(items);
      else ctx.out.table(items.map((w) => ({ ...w, events: w.events.join(',') })), ['id', 'url', 'events', 'createdAt', 'createdBy']);
    });

  webhook
    .command('remove')
    .description('remove a webhook and its deliveries')
    .argument('<id>', 'webhook id')
    .action(async (id: string) => {
      await ctx.client().removeWebhook(id);
      ctx.out.line(`webhook ${id} removed`);
    });

  webhook
    .command('deliveries')
    .description("a webhook's deliveries, newest event first; --redeliver sends one again")
    .argument('<id>', 'webhook id')
    .option('--status <status>', 'only pending, delivering, delivered or dead')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--redeliver <delivery>', 'send this delivery again now (same webhook-id)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { status?: string; limit?: string; redeliver?: string; json?: boolean }) => {
      const client = ctx.client();
      if (o.redeliver) {
        const d = await client.redeliver(id, o.redeliver);
        return o.json ? ctx.out.json(d) : ctx.out.line(`delivery ${d.id} (event ${d.eventSeq}) queued again`);
      }
      const { items } = await client.webhookDeliveries(id, { ...(o.status ? { status: o.status } : {}), ...(o.limit ? { limit: positiveInt(o.limit, '--limit') } : {}) });
      if (o.json) ctx.out.json(items);
      else ctx.out.table(items, ['id', 'eventSeq', 'eventType', 'status', 'attempts', 'lastStatus', 'lastError', 'nextAttemptAt', 'deliveredAt']);
    });
};
