import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Db, Store } from '../store/database.js';
import type { SecretBox } from '../auth/secrets.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { notFound, validation } from '../core/errors.js';
import { appendEvent, headSeq, parseTypes, toLogEvent, type LogEvent } from '../events/log.js';

export interface WebhookView {
  id: string;
  url: string;
  /** Event type prefixes it receives (`*`: all). */
  events: string[];
  createdAt: string;
  createdBy: string | null;
}

export const DELIVERY_STATUSES = ['pending', 'delivering', 'delivered', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One event for one webhook: its id is the `webhook-id` header, the same on every attempt. */
export interface DeliveryView {
  id: string;
  webhookId: string;
  eventSeq: number;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface WebhookSettings {
  /** Attempts before a delivery is dead (dead-lettered; redeliver by hand). */
  maxAttempts: number;
  /** First retry delay; doubled each attempt, up to `backoffMax`, with jitter. */
  backoffBase: number;
  backoffMax: number;
  /** Time limit of one POST. */
  timeout: number;
  /** How long a claimed delivery stays with its controller before another may take it. */
  lease: number;
  /** Deliveries one controller sends at once. */
  parallel: number;
}

const SECRET_PREFIX = 'whsec_';

/** A new signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64. */
export const newWebhookSecret = (): string => `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;

/**
 * The retry delay after `attempts` failed attempts: exponential (base·2^(n-1), at most max)
 * with "equal jitter" (half fixed, half random), so retries of many deliveries spread out.
 */
export function backoffDelay(attempts: number, s: Pick<WebhookSettings, 'backoffBase' | 'backoffMax'>, random: () => number = Math.random): number {
  const exp = Math.min(s.backoffMax, s.backoffBase * 2 ** Math.max(0, Math.min(30, attempts - 1)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** The CloudEvents 1.0 (structured JSON) form of a log event. */
export function cloudEvent(e: LogEvent): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: String(e.seq),
    source: '/plinth/events',
    type: `plinth.${e.type}`,
    time: e.at,
    ...(e.machineId ? { subject: `machines/${e.machineId}` } : e.applianceId ? { subject: `appliances/${e.applianceId}` } : {}),
    datacontenttype: 'application/json',
    data: e,
  };
}

function validUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw validation('url', 'is not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw validation('url', 'must be http:// or https://');
  if (u.username || u.password) throw validation('url', 'must not carry credentials (the signature authenticates Plinth)');
  return u.toString();
}

function validSecret(text: string): string {
  if (!text.startsWith(SECRET_PREFIX)) throw validation('secret', `must start with ${SECRET_PREFIX} (Standard Webhooks)`);
  const raw = Buffer.from(text.slice(SECRET_PREFIX.length), 'base64');
  if (raw.length < 24 || raw.toString('base64') !== text.slice(SECRET_PREFIX.length)) throw validation('secret', `must be ${SECRET_PREFIX} followed by at least 24 bytes in base64`);
  return text;
}

/**
 * Webhooks: their settings (secrets encrypted at rest) and their durable outbox. Events reach
 * a webhook in two steps, each safe with several controllers on one database:
 * - fan-out: under the webhook row's lock, events after its cursor that match its types become
 *   deliveries (unique per webhook and event), and the cursor moves on;
 * - delivery: a controller claims due deliveries with a lease (`FOR UPDATE SKIP LOCKED` on
 *   PostgreSQL, the write lock on SQLite), POSTs them outside any transaction, then records the
 *   outcome if its claim still holds. A controller that dies leaves claims that expire.
 * Nothing here runs inside a transition: a slow or dead receiver delays only its deliveries.
 */
export class WebhookService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly inflight = new Set<AbortController>();
  private stopped = true;

  constructor(
    private readonly d: {
      store: Store;
      clock: Clock;
      secrets: SecretBox;
      settings: WebhookSettings;
      /** Who claims deliveries (host, process): seen in claims, unique per controller. */
      claimer: string;
      pollMs: number;
      onError?: (e: unknown) => void;
    },
  ) {}

  /** Adds a webhook that receives the events after now. Returns the secret once (generated when not given). */
  async create(input: { url: string; events?: string[] | undefined; secret?: string | undefined }, by: string | null): Promise<WebhookView & { secret: string }> {
    const url = validUrl(input.url);
    const types = input.events?.length ? input.events : ['*'];
    parseTypes(types.join(','), 'events');
    const secret = input.secret !== undefined ? validSecret(input.secret) : newWebhookSecret();
    const at = iso(this.d.clock.now());
    const id = newId();
    const cursor = await headSeq(this.d.store);
    await this.d.store.transaction(async (trx) => {
      await trx
        .insertInto('webhooks')
        .values({ id, url, events: JSON.stringify(types), secret_enc: this.d.secrets.encrypt(secret), cursor, created_at: at, created_by: by })
        .execute();
      await appendEvent(trx, { type: 'security.webhook-added', at, actor: by ?? 'unknown', action: 'webhook-added', reason: null, details: { webhook: id, url, events: types } });
    });
    return { id, url, events: types, createdAt: at, createdBy: by, secret };
  }

  async list(): Promise<WebhookView[]> {
    const rows = await this.d.store.db.selectFrom('webhooks').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toView);
  }

  async get(id: string): Promise<WebhookView> {
    const r = await this.d.store.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound('webhook', id);
    return toView(r);
  }

  /** Removes a webhook and its deliveries (undelivered ones are dropped). */
  async remove(id: string, by: string | null): Promise<void> {
    await this.d.store.transaction(async (trx) => {
      const r = await trx.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw notFound('webhook', id);
      await appendEvent(trx, { type: 'security.webhook-removed', at: iso(this.d.clock.now()), actor: by ?? 'unknown', action: 'webhook-removed', reason: null, details: { webhook: id } });
    });
  }

  /** A webhook's deliveries, newest first. */
  async deliveries(webhookId: string, q: { status?: DeliveryStatus | undefined; limit: number }): Promise<DeliveryView[]> {
    await this.get(webhookId);
    let query = this.d.store.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId);
    if (q.status) query = query.where('status', '=', q.status);
    const rows = await query.orderBy('event_seq', 'desc').limit(q.limit).execute();
    return rows.map(toDelivery);
  }

  /** Sends a delivery again (dead, delivered or waiting): due now, with the same webhook-id. */
  async redeliver(webhookId: string, deliveryId: string): Promise<DeliveryView> {
    const now = iso(this.d.clock.now());
    const r = await this.d.store.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now, claimed_by: null, claimed_until: null })
      .where('id', '=', deliveryId)
      .where('webhook_id', '=', webhookId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound('delivery', deliveryId);
    this.kick();
    return toDelivery(await this.d.store.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', deliveryId).executeTakeFirstOrThrow());
  }

  /** Turns new events into deliveries for every webhook. Returns how many were queued. */
  async fanOut(): Promise<number> {
    const hooks = await this.d.store.db.selectFrom('webhooks').select(['id']).execute();
    if (hooks.length === 0) return 0;
    // Every event up to the head is committed and numbered: none can appear below it later.
    const head = await headSeq(this.d.store);
    let queued = 0;
    for (const h of hooks) {
      queued += await this.d.store.transaction(async (trx) => {
        const w = await this.d.store.forUpdate(trx.selectFrom('webhooks').selectAll().where('id', '=', h.id)).executeTakeFirst();
        if (!w) return 0;
        const types = parseTypes(fromJsonList(w.events).join(','), 'events');
        const cursor = Number(w.cursor);
        if (head <= cursor) return 0;
        const events = await readEventsIn(trx, { after: cursor, upTo: head, types });
        const at = iso(this.d.clock.now());
        for (const e of events) {
          await trx
            .insertInto('webhook_deliveries')
            .values({ id: newId(), webhook_id: w.id, event_seq: e.seq, event_type: e.type, status: 'pending', attempts: 0, next_attempt_at: at, created_at: at })
            .onConflict((oc) => oc.columns(['webhook_id', 'event_seq']).doNothing())
            .execute();
        }
        await trx.updateTable('webhooks').set({ cursor: head }).where('id', '=', w.id).execute();
        return events.length;
      });
    }
    return queued;
  }

  /** Claims due deliveries (leased to this controller). */
  async claim(limit: number): Promise<Array<DeliveryView & { url: string; secretEnc: string }>> {
    const now = this.d.clock.now();
    const at = iso(now);
    const until = iso(new Date(now.getTime() + this.d.settings.lease));
    return this.d.store.transaction(async (trx) => {
      let q = trx
        .selectFrom('webhook_deliveries')
        .select('id')
        .where((eb) => eb.or([eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', at)]), eb.and([eb('status', '=', 'delivering'), eb('claimed_until', '<', at)])]))
        .orderBy('next_attempt_at')
        .limit(limit);
      if (this.d.store.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const ids = (await q.execute()).map((r) => r.id);
      if (ids.length === 0) return [];
      await trx
        .updateTable('webhook_deliveries')
        .set((eb) => ({ status: 'delivering', claimed_by: this.d.claimer, claimed_until: until, attempts: eb('attempts', '+', 1) }))
        .where('id', 'in', ids)
        .execute();
      const rows = await trx
        .selectFrom('webhook_deliveries')
        .innerJoin('webhooks', 'webhooks.id', 'webhook_deliveries.webhook_id')
        .selectAll('webhook_deliveries')
        .select(['webhooks.url', 'webhooks.secret_enc'])
        .where('webhook_deliveries.id', 'in', ids)
        .execute();
      return rows.map((r) => ({ ...toDelivery(r), url: r.url, secretEnc: r.secret_enc }));
    });
  }

  /** Sends one claimed delivery and records what happened (if the claim is still this controller's). */
  async send(d: DeliveryView & { url: string; secretEnc: string }): Promise<DeliveryStatus> {
    const row = await this.d.store.db.selectFrom('events').selectAll().where('seq', '=', d.eventSeq).executeTakeFirst();
    let status: number | null = null;
    let error: string | null = null;
    if (!row) error = `event ${d.eventSeq} is no longer in the log`;
    else {
      const body = JSON.stringify(cloudEvent(toLogEvent(row)));
      const signedAt = this.d.clock.now();
      const signature = new Webhook(this.d.secrets.decrypt(d.secretEnc)).sign(d.id, signedAt, body);
      const abort = new AbortController();
      this.inflight.add(abort);
      try {
        const res = await fetch(d.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/cloudevents+json',
            'user-agent': 'plinth-webhooks',
            'webhook-id': d.id,
            'webhook-timestamp': String(Math.floor(signedAt.getTime() / 1000)),
            'webhook-signature': signature,
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.any([abort.signal, AbortSignal.timeout(this.d.settings.timeout)]),
        });
        status = res.status;
        await res.body?.cancel().catch(() => undefined);
        if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
      } catch (e) {
        // Stopping: the claim stays, and expires for another controller (or this one, restarted).
        if (abort.signal.aborted) return 'delivering';
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        error = cause?.code ?? cause?.message ?? (e as Error).message;
      } finally {
        this.inflight.delete(abort);
      }
    }
    const now = this.d.clock.now();
    const next: DeliveryStatus = error === null ? 'delivered' : d.attempts >= this.d.settings.maxAttempts ? 'dead' : 'pending';
    await this.d.store.db
      .updateTable('webhook_deliveries')
      .set({
        status: next,
        claimed_by: null,
        claimed_until: null,
        last_status: status,
        last_error: error,
        ...(next === 'delivered' ? { delivered_at: iso(now) } : {}),
        ...(next === 'pending' ? { next_attempt_at: iso(new Date(now.getTime() + backoffDelay(d.attempts, this.d.settings))) } : {}),
      })
      .where('id', '=', d.id)
      .where('status', '=', 'delivering')
      .where('claimed_by', '=', this.d.claimer)
      .execute();
    return next;
  }

  /** One round: fan out, then send what is due (in parallel, up to `parallel`). */
  async tick(): Promise<void> {
    await this.fanOut();
    for (;;) {
      if (this.stopped && this.timer === null && this.running === null) return;
      const claimed = await this.claim(this.d.settings.parallel);
      if (claimed.length === 0) return;
      await Promise.all(claimed.map((d) => this.send(d).catch((e) => this.d.onError?.(e))));
      if (this.stopped) return;
    }
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop; deliveries under way are cut and their claims left to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const a of this.inflight) a.abort();
    await this.running;
  }

  /** Runs a round soon (a redelivery asked for). */
  kick(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.tick()
        .catch((e) => this.d.onError?.(e))
        .finally(() => {
          this.running = null;
          this.schedule(this.d.pollMs);
        });
    }, ms);
    this.timer.unref?.();
  }
}

async function readEventsIn(trx: Db, q: { after: number; upTo: number; types: readonly string[] | undefined }): Promise<LogEvent[]> {
  const rows = await trx.selectFrom('events').selectAll().where('seq', '>', q.after).where('seq', '<=', q.upTo).orderBy('seq').execute();
  return rows.map(toLogEvent).filter((e) => !q.types || q.types.some((t) => e.type.startsWith(t)));
}

const fromJsonList = (text: string): string[] => JSON.parse(text) as string[];

function toView(r: { id: string; url: string; events: string; created_at: string; created_by: string | null }): WebhookView {
  return { id: r.id, url: r.url, events: fromJsonList(r.events), createdAt: r.created_at, createdBy: r.created_by };
}

function toDelivery(r: {
  id: string;
  webhook_id: string;
  event_seq: number | string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}): DeliveryView {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    eventSeq: Number(r.event_seq),
    eventType: r.event_type,
    status: r.status as DeliveryStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
  };
}
