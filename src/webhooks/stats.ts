import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../store/database.js';
import { DELIVERY_STATUSES, type DeliveryStatus } from './service.js';

export interface WebhookStats {
  /** Deliveries by status, every webhook together. */
  deliveries: Record<DeliveryStatus, number>;
  /** Seconds since the oldest delivery not yet delivered (pending or delivering) was queued; 0: none. */
  oldestUndeliveredSeconds: number;
}

/** Webhook outbox counters, read from the database (the same on every controller sharing it). */
export async function webhookStats(db: Db, now: Date = new Date()): Promise<WebhookStats> {
  const rows = await db.selectFrom('webhook_deliveries').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
  const deliveries = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Record<DeliveryStatus, number>;
  for (const r of rows) if (r.status in deliveries) deliveries[r.status as DeliveryStatus] = Number(r.n);
  const oldest = await db
    .selectFrom('webhook_deliveries')
    .select((eb) => eb.fn.min('created_at').as('at'))
    .where('status', 'in', ['pending', 'delivering'])
    .executeTakeFirst();
  const at = oldest?.at ? Date.parse(String(oldest.at)) : NaN;
  return { deliveries, oldestUndeliveredSeconds: Number.isNaN(at) ? 0 : Math.max(0, (now.getTime() - at) / 1000) };
}

/** The metric families of webhookStats, read at each scrape: `plinth_webhook_deliveries`, `plinth_webhook_event_lag_seconds`. */
export function webhookMetrics(db: Db): (registry: Registry) => void {
  return (registry) => {
    let reading: Promise<WebhookStats> | null = null;
    const read = () => (reading ??= webhookStats(db).finally(() => setImmediate(() => (reading = null))));
    new Gauge({
      name: 'plinth_webhook_deliveries',
      help: 'Webhook deliveries by status (pending, delivering, delivered, dead)',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const s = await read();
        for (const [status, n] of Object.entries(s.deliveries)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'plinth_webhook_event_lag_seconds',
      help: 'Age of the oldest webhook delivery not yet delivered (0: none waiting)',
      registers: [registry],
      async collect() {
        this.set((await read()).oldestUndeliveredSeconds);
      },
    });
  };
}
