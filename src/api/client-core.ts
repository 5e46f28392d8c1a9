import type { Static } from 'typebox';
import type { BootAttemptSchema, InstallerAccessSchema, MachineSchema, RunSchema, EventSchema, LogEventSchema, WebhookSchema, DeliverySchema, TokenSchema, MachineCreateBody, MachineBulkCreateBody, MachinePatchBody, ActionBodyType, AllocateBodyType, RunLogLine, ArtifactSchema } from './schemas.js';
import { createParser } from 'eventsource-parser';
import { PlinthError, type ErrorCode } from '../core/errors.js';

export type MachineView = Static<typeof MachineSchema>;
export type RunView = Static<typeof RunSchema>;
export type InstallerAccess = Static<typeof InstallerAccessSchema>;
export type EventView = Static<typeof EventSchema>;
export type LogEventView = Static<typeof LogEventSchema>;
export type WebhookView = Static<typeof WebhookSchema>;
export type DeliveryView = Static<typeof DeliverySchema>;
export interface EventQueryView {
  after?: number;
  machine?: string;
  type?: string;
}
export type TokenView = Static<typeof TokenSchema>;
export type ArtifactView = Static<typeof ArtifactSchema>;
export type LogLineView = Static<typeof RunLogLine>;
export type BootAttemptView = Static<typeof BootAttemptSchema>;
/** The filter and page of a machine list (GET /api/v1/machines). */
export type MachineListQuery = {
  state?: string[];
  tag?: string[];
  owner?: string;
  q?: string;
  maintenance?: boolean;
  power?: string;
  profile?: string;
  include?: string[];
  limit?: number;
  cursor?: string;
};
export interface PageView<T> {
  items: T[];
  nextCursor: string | null;
}

/** An error answered by the controller, carrying its code, status and details. */
export class ApiError extends PlinthError {
  /** The HTTP status the controller answered with. */
  readonly status: number;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(code as ErrorCode, message, details ? { details } : {});
    this.name = 'ApiError';
    this.status = status;
  }
}

export interface CoreClientOptions {
  url: string;
  token?: string | null;
  timeoutMs?: number;
}

/** Certificate verification failures, as Node names them: the remedy is a CA bundle, not a restart. */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID/;

/**
 * The typed client of the REST API, used by the CLI (through PlinthClient in client.ts, which
 * adds a private CA), the web UI and tests. It speaks HTTP with the platform's fetch only, so
 * it runs in a browser as well as in Node; nothing here touches the database.
 */
export class ApiClient {
  readonly url: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;

  /** The Authorization header value, for requests the typed methods don't cover (streamed uploads). */
  get authorization(): string | null {
    return this.token ? `Bearer ${this.token}` : null;
  }

  constructor(opts: CoreClientOptions) {
    // A browser's client talks to the page's own controller: an empty URL means paths alone.
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token ?? null;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** fetch with this client's trust settings, for requests the typed methods don't cover (streamed uploads). */
  fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    return fetch(url, init);
  }

  /** The absolute URL of a path on the controller (in a browser, relative to the page: the client's URL may be empty). */
  private urlOf(path: string): URL {
    return new URL(this.url + path, (globalThis as { location?: { href: string } }).location?.href);
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Record<string, string | string[] | number | boolean | undefined>,
    signal?: AbortSignal,
  ): Promise<T> {
    const u = this.urlOf(path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(item));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetch(u, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      // undici wraps the socket error, sometimes in an AggregateError (one per address tried).
      const c = (e as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
      const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (e as Error).message;
      if (UNTRUSTED_CERTIFICATE.test(cause)) {
        throw new PlinthError('unavailable', `the certificate of ${this.url} is not trusted (${cause}); give its CA with --ca-bundle or PLINTH_CA_BUNDLE`, { cause: e });
      }
      throw new PlinthError('unavailable', `cannot reach the controller at ${this.url} (${cause}); is it running? (set PLINTH_URL or --url)`, { cause: e });
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
      throw new ApiError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`, err?.details);
    }
    return parsed as T;
  }

  /** A page of the event log after `after`; `next` continues. */
  eventLog(q: EventQueryView & { limit?: number } = {}) {
    return this.request<{ items: LogEventView[]; next: number }>('GET', '/api/v1/events', undefined, { ...q });
  }

  /**
   * Follows the event stream (SSE) until `signal` aborts: yields every event after `after`
   * (from now when left out); when the connection drops it connects again with the last
   * seq it saw as Last-Event-ID, so nothing is missed or repeated.
   */
  async *followEvents(q: EventQueryView, signal: AbortSignal): AsyncGenerator<LogEventView> {
    let last: number | undefined = q.after;
    while (!signal.aborted) {
      const u = this.urlOf('/api/v1/events/stream');
      if (q.machine) u.searchParams.set('machine', q.machine);
      if (q.type) u.searchParams.set('type', q.type);
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      if (last !== undefined) headers['last-event-id'] = String(last);
      let res: Response;
      try {
        res = await this.fetch(u, { headers, signal });
      } catch (e) {
        if (signal.aborted) return;
        throw new PlinthError('unavailable', `cannot reach the controller at ${this.url} (${(e as Error).message})`, { cause: e });
      }
      if (!res.ok || !res.body) {
        const err = ((await res.json().catch(() => null)) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
        throw new ApiError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`, err?.details);
      }
      const queue: LogEventView[] = [];
      const parser = createParser({ onEvent: (m) => queue.push(JSON.parse(m.data) as LogEventView) });
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          parser.feed(decoder.decode(chunk, { stream: true }));
          while (queue.length) {
            const e = queue.shift()!;
            last = e.seq;
            yield e;
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        // The connection dropped: connect again after the last event seen.
      }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  addWebhook(body: { url: string; events?: string[]; secret?: string }) {
    return this.request<WebhookView & { secret: string }>('POST', '/api/v1/webhooks', body);
  }
  listWebhooks() {
    return this.request<{ items: WebhookView[] }>('GET', '/api/v1/webhooks');
  }
  removeWebhook(id: string) {
    return this.request<void>('DELETE', `/api/v1/webhooks/${encodeURIComponent(id)}`);
  }
  webhookDeliveries(id: string, q: { status?: string; limit?: number } = {}) {
    return this.request<{ items: DeliveryView[] }>('GET', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries`, undefined, q);
  }
  redeliver(id: string, delivery: string) {
    return this.request<DeliveryView>('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(delivery)}/redeliver`);
  }

  health() {
    return this.request<{ status: string; database: string }>('GET', '/healthz');
  }
  /** The controller's settings without its secrets. */
  settings() {
    return this.request<Record<string, unknown>>('GET', '/api/v1/settings');
  }
  whoami() {
    return this.request<{ name: string; role: string; tokenId: string }>('GET', '/api/v1/whoami');
  }

  listMachines(q: MachineListQuery = {}) {
    return this.request<PageView<MachineView>>('GET', '/api/v1/machines', undefined, q);
  }
  async *allMachines(q: Parameters<ApiClient['listMachines']>[0] = {}): AsyncGenerator<MachineView> {
    let cursor: string | undefined;
    do {
      const page = await this.listMachines({ ...q, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  machineCounts(q: Omit<MachineListQuery, 'include' | 'limit' | 'cursor'> = {}) {
    return this.request<{ total: number; byState: Record<string, number> }>('GET', '/api/v1/machine-counts', undefined, q);
  }
  getMachine(key: string) {
    return this.request<MachineView>('GET', `/api/v1/machines/${encodeURIComponent(key)}`);
  }
  createMachine(body: MachineCreateBody) {
    return this.request<MachineView>('POST', '/api/v1/machines', body);
  }
  /** Many machines in one transaction, all or none (at most BULK_ENROL_MAX). */
  createMachines(body: MachineBulkCreateBody) {
    return this.request<{ machines: MachineView[] }>('POST', '/api/v1/machines/bulk', body);
  }
  updateMachine(key: string, patch: MachinePatchBody) {
    return this.request<MachineView>('PATCH', `/api/v1/machines/${encodeURIComponent(key)}`, patch);
  }
  deleteMachine(key: string) {
    return this.request<void>('DELETE', `/api/v1/machines/${encodeURIComponent(key)}`);
  }
  allocate(body: AllocateBodyType) {
    return this.request<{ owner: string; machines: MachineView[] }>('POST', '/api/v1/machines/allocate', body);
  }
  action(key: string, action: string, body: ActionBodyType & Record<string, unknown> = {}) {
    return this.request<{ machine: MachineView; run: RunView | null }>('POST', `/api/v1/machines/${encodeURIComponent(key)}/actions/${encodeURIComponent(action)}`, body);
  }  installerAccess(key: string) {
    return this.request<InstallerAccess>('GET', `/api/v1/machines/${encodeURIComponent(key)}/installer`);
  }

  events(key: string, q: { limit?: number; cursor?: string } = {}) {
    return this.request<PageView<EventView>>('GET', `/api/v1/machines/${encodeURIComponent(key)}/events`, undefined, q);
  }
  runs(key: string, q: { limit?: number; cursor?: string } = {}) {
    return this.request<PageView<RunView>>('GET', `/api/v1/machines/${encodeURIComponent(key)}/runs`, undefined, q);
  }
  trace(key: string, attempts = 10) {
    return this.request<{ machine: string; lastStage: string | null; attempts: BootAttemptView[] }>('GET', `/api/v1/machines/${encodeURIComponent(key)}/trace`, undefined, { attempts });
  }
  getRun(id: string) {
    return this.request<RunView>('GET', `/api/v1/runs/${encodeURIComponent(id)}`);
  }
  runLog(id: string, q: { after?: number; limit?: number } = {}) {
    return this.request<{ items: LogLineView[] }>('GET', `/api/v1/runs/${encodeURIComponent(id)}/log`, undefined, q);
  }
  runArtifacts(id: string) {
    return this.request<{ items: ArtifactView[] }>('GET', `/api/v1/runs/${encodeURIComponent(id)}/artifacts`);
  }

  listTokens() {
    return this.request<{ items: TokenView[] }>('GET', '/api/v1/tokens');
  }
  createToken(body: { name: string; role: string; expiresAt?: string | null }) {
    return this.request<{ token: string; record: TokenView }>('POST', '/api/v1/tokens', body);
  }
  revokeToken(key: string) {
    return this.request<TokenView>('DELETE', `/api/v1/tokens/${encodeURIComponent(key)}`);
  }
}
