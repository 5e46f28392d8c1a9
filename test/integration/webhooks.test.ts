import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { backends } from '../support/backends.js';
import { webhookStats } from '../../src/webhooks/stats.js';
import { inProcessCli } from '../support/cli.js';
import { freshController, startController, type TestController } from '../support/controller.js';

type TC = Awaited<ReturnType<typeof freshController>>;
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number | null;
}

/** A real HTTP receiver: each path answers by its handler (status, or null: never answer). */
async function receiver(): Promise<{ url: string; got: Received[]; answer: Map<string, (n: number) => number | null>; server: Server; hanging: Set<() => void> }> {
  const got: Received[] = [];
  const answer = new Map<string, (n: number) => number | null>();
  const hanging = new Set<() => void>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const n = got.filter((g) => g.path === path).length;
      const status = (answer.get(path) ?? (() => 200))(n);
      const r: Received = { path, headers: req.headers, body, answered: status };
      got.push(r);
      if (status === null) hanging.add(() => res.destroy());
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got, answer, server, hanging };
}

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await what();
    if (ok(v)) return v;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Quick retries; the default lease and POST timeout (60 s, 10 s), which no slow step outlasts. */
const FAST = { webhooks: { poll: '20ms', backoffBase: '20ms', backoffMax: '100ms', maxAttempts: 4 } };
/** For the test that waits for a lease to end: short, with a POST timeout it covers (lease ≥ 2 × timeout). */
const SHORT_LEASE = { webhooks: { ...FAST.webhooks, lease: '500ms', timeout: '250ms' } };

describe.each(backends)('webhooks on $name', (backend) => {
  let t: TC;
  let rx: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    rx = await receiver();
    t = await freshController(backend, FAST);
    t.controller.webhooks.start();
  });
  afterAll(async () => {
    for (const h of rx?.hanging ?? []) h();
    await new Promise((r) => rx?.server.close(r));
    await t?.close();
  });
  const add = async (path: string, body: Record<string, unknown> = {}) => {
    const r = await t.api('POST', '/api/v1/webhooks', { url: `${rx.url}${path}`, ...body });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<{ id: string; secret: string; events: string[] }>();
  };
  const deliveries = async (id: string) => (await t.api('GET', `/api/v1/webhooks/${id}/deliveries`)).json().items as any[];

  it('refuses bad input naming the field, and non-admins', async () => {
    const bad = async (body: object, field: string) => {
      const r = await t.api('POST', '/api/v1/webhooks', body);
      expect(r.statusCode, r.body).toBe(400);
      expect(JSON.stringify(r.json().error)).toContain(field);
    };
    await bad({ url: 'ftp://x/y' }, 'url');
    await bad({ url: 'not a url' }, 'url');
    await bad({ url: 'http://u:p@x/' }, 'url');
    await bad({ url: 'http://x/', secret: 'hunter2' }, 'secret');
    await bad({ url: 'http://x/', events: ['machine%'] }, 'events');
    const op = (await t.api('POST', '/api/v1/tokens', { name: 'op-wh', role: 'operator' })).json().token;
    expect((await t.api('GET', '/api/v1/webhooks', undefined, op)).statusCode).toBe(403);
    expect((await t.api('POST', '/api/v1/webhooks', { url: 'http://x/' }, op)).statusCode).toBe(403);
    expect((await t.api('GET', '/api/v1/webhooks')).json().items).toEqual([]);
  });

  it('POSTs signed CloudEvents the receiver verifies with standardwebhooks; the secret is shown once and stored encrypted', async () => {
    const w = await add('/signed', { events: ['machine.enroll'] });
    expect(w.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const listed = (await t.api('GET', '/api/v1/webhooks')).json().items;
    expect(JSON.stringify(listed)).not.toContain(w.secret);
    const row = await t.controller.services.store.db.selectFrom('webhooks').selectAll().where('id', '=', w.id).executeTakeFirstOrThrow();
    expect(row.secret_enc).not.toContain(w.secret.slice(6));

    await t.api('POST', '/api/v1/machines', { name: 'wh-signed' });
    const got = await until(() => rx.got.filter((g) => g.path === '/signed'), (g) => g.length === 1);
    const payload = new Webhook(w.secret).verify(got[0]!.body, got[0]!.headers as Record<string, string>) as Record<string, any>;
    expect(payload).toMatchObject({ specversion: '1.0', source: '/plinth/events', type: 'plinth.machine.enroll', datacontenttype: 'application/json' });
    expect(payload.data).toMatchObject({ type: 'machine.enroll', action: 'enroll', toState: 'enrolled' });
    expect(got[0]!.headers['content-type']).toBe('application/cloudevents+json');
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got[0]!.body, got[0]!.headers as Record<string, string>)).toThrow();
    const d = await until(() => deliveries(w.id), (x) => x[0]?.status === 'delivered');
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ id: got[0]!.headers['webhook-id'], eventType: 'machine.enroll', attempts: 1, lastStatus: 200 });
  });

  it('a receiver failing three times, then recovering, gets every event exactly once after dedupe by webhook-id', async () => {
    rx.answer.set('/flaky', (n) => (n < 3 ? 503 : 200));
    const w = await add('/flaky', { events: ['machine.enroll'] });
    for (const name of ['flaky-1', 'flaky-2', 'flaky-3']) await t.api('POST', '/api/v1/machines', { name });
    const done = await until(() => deliveries(w.id), (x) => x.length === 3 && x.every((d) => d.status === 'delivered'));
    const ok = rx.got.filter((g) => g.path === '/flaky' && g.answered === 200);
    const unique = new Map(ok.map((g) => [g.headers['webhook-id'], JSON.parse(g.body).data.seq]));
    expect(unique.size).toBe(3);
    expect([...unique.keys()].sort()).toEqual(done.map((d) => d.id).sort());
    expect(new Set(unique.values()).size).toBe(3);
    expect(rx.got.filter((g) => g.path === '/flaky' && g.answered === 503)).toHaveLength(3);
    // Retries carry the same webhook-id: that is what the receiver dedupes on.
    const failedIds = rx.got.filter((g) => g.path === '/flaky' && g.answered === 503).map((g) => g.headers['webhook-id']);
    for (const id of failedIds) expect(unique.has(id)).toBe(true);
  });

  it('dead-letters a delivery after maxAttempts failures; redeliver sends it again with the same webhook-id', async () => {
    let down = true;
    rx.answer.set('/down', () => (down ? 500 : 204));
    const w = await add('/down', { events: ['machine.enroll'] });
    await t.api('POST', '/api/v1/machines', { name: 'dead-1' });
    const [dead] = await until(() => deliveries(w.id), (x) => x[0]?.status === 'dead');
    expect(dead).toMatchObject({ attempts: 4, lastStatus: 500, lastError: 'HTTP 500' });
    expect(rx.got.filter((g) => g.path === '/down')).toHaveLength(4);
    down = false;
    const r = await t.api('POST', `/api/v1/webhooks/${w.id}/deliveries/${dead.id}/redeliver`);
    expect(r.statusCode, r.body).toBe(200);
    await until(() => deliveries(w.id), (x) => x[0]?.status === 'delivered');
    const last = rx.got.filter((g) => g.path === '/down').at(-1)!;
    expect(last).toMatchObject({ answered: 204 });
    expect(last.headers['webhook-id']).toBe(dead.id);
    expect((await t.api('POST', `/api/v1/webhooks/${w.id}/deliveries/nope/redeliver`)).statusCode).toBe(404);
  });

  it('a controller stopped mid-delivery loses nothing: a second controller on the database delivers it', async () => {
    // The controller that stops holds its claim with a short lease, so the test waits 500 ms for it.
    await t.controller.webhooks.stop();
    const stopping: TestController = await startController(t.db, SHORT_LEASE);
    try {
      stopping.controller.webhooks.start();
      rx.answer.set('/slow', (n) => (n === 0 ? null : 200));
      const w = await add('/slow', { events: ['machine.enroll'] });
      await t.api('POST', '/api/v1/machines', { name: 'slow-1' });
      // Its POST is under way and never answered…
      const first = await until(() => rx.got.filter((g) => g.path === '/slow'), (g) => g.length === 1);
      await stopping.controller.webhooks.stop();
      // …the suite's controller, on the same database, takes the claim once its lease ends.
      t.controller.webhooks.start();
      const again = await until(() => rx.got.filter((g) => g.path === '/slow'), (g) => g.length === 2);
      expect(again[1]!.headers['webhook-id']).toBe(first[0]!.headers['webhook-id']);
      expect(again[1]!.answered).toBe(200);
      await until(() => deliveries(w.id), (x) => x[0]?.status === 'delivered');
    } finally {
      await stopping.close();
      t.controller.webhooks.start();
    }
  });

  it('two controllers delivering from one database at once send each event once per webhook', async () => {
    const w = await add('/pair', { events: ['machine.enroll'] });
    // Two controllers of their own with a lease no send outlasts: what is tested is the claim
    // (each takes what the other has not), not a lease expiring under a send slowed by a busy
    // machine, after which a second send is what a lease is for (the test above).
    await t.controller.webhooks.stop();
    const settings = { webhooks: { ...FAST.webhooks, lease: '10m' } };
    const one: TestController = await startController(t.db, settings);
    const other: TestController = await startController(t.db, settings);
    try {
      one.controller.webhooks.start();
      other.controller.webhooks.start();
      // Both loops are running while the events arrive: each must claim what the other has not.
      const names = Array.from({ length: 24 }, (_, i) => `pair-${i}`);
      await Promise.all(names.map((name, i) => (i % 2 ? other : one).api('POST', '/api/v1/machines', { name })));
      const done = await until(() => deliveries(w.id), (x) => x.length === names.length && x.every((d) => d.status === 'delivered'));
      const posts = rx.got.filter((g) => g.path === '/pair');
      expect(posts).toHaveLength(names.length);
      expect(new Set(posts.map((g) => g.headers['webhook-id'])).size).toBe(names.length);
      expect(new Set(posts.map((g) => JSON.parse(g.body).data.machine?.name ?? JSON.parse(g.body).subject)).size).toBe(names.length);
      expect(done.every((d) => d.attempts === 1)).toBe(true);
    } finally {
      await Promise.all([one.close(), other.close()]);
      t.controller.webhooks.start();
    }
  });

  it('counts deliveries by status and the oldest undelivered age for /metrics', async () => {
    const stats = await webhookStats(t.controller.services.store.db);
    const rows = await t.controller.services.store.db.selectFrom('webhook_deliveries').select('status').execute();
    expect(stats.deliveries.delivered).toBe(rows.filter((r) => r.status === 'delivered').length);
    expect(stats.deliveries.delivered).toBeGreaterThan(0);
    const text = (await t.api('GET', '/metrics')).body;
    expect(text).toContain(`plinth_webhook_deliveries{status="delivered"} ${stats.deliveries.delivered}`);
    expect(text).toMatch(/plinth_webhook_event_lag_seconds \d/);
  });

  it('plinth webhook add, list, deliveries --redeliver, remove; a bad URL is one line and a non-zero exit', async () => {
    const url = await t.controller.listen();
    const cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken });
    const added = await cli('webhook', 'add', `${rx.url}/cli`, '--event', 'machine.enroll', '--json');
    expect(added.code, added.stderr).toBe(0);
    const w = JSON.parse(added.stdout);
    expect(w.secret).toMatch(/^whsec_/);
    expect((await cli('webhook', 'list')).stdout).toContain(`${rx.url}/cli`);
    expect((await cli('webhook', 'list')).stdout).not.toContain(w.secret);
    await t.api('POST', '/api/v1/machines', { name: 'cli-wh' });
    const [d] = await until(() => deliveries(w.id), (x) => x[0]?.status === 'delivered');
    const listed = await cli('webhook', 'deliveries', w.id);
    expect(listed.stdout).toContain(`${d.id} ${d.eventSeq} machine.enroll delivered`);
    const again = await cli('webhook', 'deliveries', w.id, '--redeliver', d.id);
    expect(again.stdout.trim()).toBe(`delivery ${d.id} (event ${d.eventSeq}) queued again`);
    await until(() => rx.got.filter((g) => g.path === '/cli'), (g) => g.length === 2);
    expect((await cli('webhook', 'remove', w.id)).code).toBe(0);
    const bad = await cli('webhook', 'add', 'ftp://nowhere/');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('url');
  });

  it('removes a webhook with its deliveries', async () => {
    const w = await add('/gone');
    expect((await t.api('DELETE', `/api/v1/webhooks/${w.id}`)).statusCode).toBe(204);
    expect((await t.api('DELETE', `/api/v1/webhooks/${w.id}`)).statusCode).toBe(404);
    expect((await t.api('GET', `/api/v1/webhooks/${w.id}/deliveries`)).statusCode).toBe(404);
    const ev = (await t.api('GET', '/api/v1/events?type=security.webhook')).json().items.map((e: any) => e.action);
    expect(ev).toContain('webhook-added');
    expect(ev).toContain('webhook-removed');
  });
});
