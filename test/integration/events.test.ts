import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, startController, type TestController } from '../support/controller.js';
import { PlinthClient, type LogEventView } from '../../src/api/client.js';
import { appendEvent } from '../../src/events/log.js';
import { inProcessCli } from '../support/cli.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/** Reads a stream until `until` holds for what it has read. */
async function collect(stream: AsyncGenerator<LogEventView>, until: (seen: LogEventView[]) => boolean): Promise<LogEventView[]> {
  const seen: LogEventView[] = [];
  for await (const e of stream) {
    seen.push(e);
    if (until(seen)) break;
  }
  return seen;
}

describe.each(backends)('event log on $name', (backend) => {
  let t: TC;
  let second: TestController;
  let url: string;
  beforeAll(async () => {
    t = await freshController(backend, { events: { poll: '20ms', heartbeat: '50ms' } });
    url = await t.controller.listen();
    // A second controller on the same database: its events reach the first one's streams.
    second = await startController(t.db, { events: { poll: '20ms' } });
  });
  afterAll(async () => {
    await second?.close();
    await t?.close();
  });
  const client = () => new PlinthClient({ url, token: t.adminToken });
  const log = async (q: string) => {
    const r = await t.api('GET', `/api/v1/events${q}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json<{ items: LogEventView[]; next: number }>();
  };

  it('records transitions and other machine events with a growing seq, filtered by machine and type prefix', async () => {
    const start = (await log('')).next;
    await t.api('POST', '/api/v1/machines', { name: 'ev-1' });
    await t.api('POST', '/api/v1/machines', { name: 'ev-2' });
    expect((await t.api('POST', '/api/v1/machines/ev-1/actions/inspect', { reason: 'new' })).statusCode).toBe(200);

    const all = await log(`?after=${start}`);
    expect(all.items.map((e) => [e.type, e.action, e.toState])).toEqual([
      ['machine.enroll', 'enroll', 'enrolled'],
      ['machine.enroll', 'enroll', 'enrolled'],
      ['machine.transition', 'inspect', 'inspecting'],
    ]);
    const seqs = all.items.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(3);
    expect(all.next).toBe(seqs[2]);
    expect(all.items[2]).toMatchObject({ actor: 'operator:admin', fromState: 'enrolled', reason: 'new' });

    const ev1 = (await t.api('GET', '/api/v1/machines/ev-1')).json().id;
    expect((await log(`?after=${start}&machine=ev-1`)).items.map((e) => e.machineId)).toEqual([ev1, ev1]);
    expect((await log(`?after=${start}&type=machine.transition`)).items.map((e) => e.action)).toEqual(['inspect']);
    expect((await log(`?after=${start}&type=power.,machine.tr`)).items.map((e) => e.action)).toEqual(['inspect']);
    // The cursor: a page continues after the previous one's `next`.
    const first = await log(`?after=${start}&limit=2`);
    expect(first.items).toHaveLength(2);
    expect((await log(`?after=${first.next}`)).items.map((e) => e.seq)).toEqual([seqs[2]]);
    // The machine's own history is still there, in the same order.
    const history = (await t.api('GET', '/api/v1/machines/ev-1/events')).json().items;
    expect(history.map((e: any) => e.action)).toEqual(['enroll', 'inspect']);
  });

  it('refuses a bad filter with 400 naming it, an unknown machine with 404', async () => {
    const bad = await t.api('GET', '/api/v1/events?type=machine%25');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.field).toBe('type');
    expect((await t.api('GET', '/api/v1/events?after=-1')).statusCode).toBe(400);
    expect((await t.api('GET', '/api/v1/events?machine=nope')).statusCode).toBe(404);
    const stream = await t.inject('GET', '/api/v1/events/stream', { token: t.adminToken, headers: { 'last-event-id': 'x' } });
    expect(stream.statusCode).toBe(400);
    expect(stream.json().error.details.field).toBe('Last-Event-ID');
    expect((await t.api('GET', '/api/v1/events', undefined, null)).statusCode).toBe(401);
  });

  it('streams events as they are committed, from both controllers, and resumes after Last-Event-ID', async () => {
    const stop = new AbortController();
    const after = (await log('')).next;
    const live = collect(client().followEvents({ after, type: 'machine.' }, stop.signal), (seen) => seen.length === 2);
    await t.api('POST', '/api/v1/machines', { name: 'live-1' });
    await second.api('POST', '/api/v1/machines', { name: 'live-2' });
    const seen = await live;
    stop.abort();
    expect(seen.map((e) => e.type)).toEqual(['machine.enroll', 'machine.enroll']);
    const names = await Promise.all(seen.map(async (e) => (await t.api('GET', `/api/v1/machines/${e.machineId}`)).json().name));
    expect(names).toEqual(['live-1', 'live-2']);

    // A new stream that says it saw the first gets the second and what came after, nothing before.
    await second.api('POST', '/api/v1/machines/live-2/actions/inspect', {});
    const again = new AbortController();
    const resumed = await collect(client().followEvents({ after: seen[0]!.seq, machine: 'live-2' }, again.signal), (s) => s.length === 2);
    again.abort();
    expect(resumed.map((e) => [e.action, e.seq > seen[0]!.seq])).toEqual([
      ['enroll', true],
      ['inspect', true],
    ]);
  });

  it('plinth events lists with filters, and --follow prints events as they happen', async () => {
    const cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken });
    const after = (await log('')).next;
    await t.api('POST', '/api/v1/machines', { name: 'cli-ev' });
    const listed = await cli('events', '--after', String(after), '--type', 'machine.', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((e: LogEventView) => e.type)).toEqual(['machine.enroll']);
    const bad = await cli('events', '--type', 'nope%');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('type');
  });

  it('records runs finishing, images and tokens as events', async () => {
    const after = (await log('')).next;
    await t.api('POST', '/api/v1/machines', { name: 'ev-run' });
    const { run } = (await t.api('POST', '/api/v1/machines/ev-run/actions/inspect', {})).json();
    const agent = { kind: 'agent' as const, name: 'installer' };
    await t.controller.services.engine.act('ev-run', 'installer-started', { actor: agent, runId: run.id });
    const { updateStep } = await import('../../src/runs/runs.js');
    await updateStep(t.controller.services.store.db, run.id, 'agent-hello', 'succeeded', new Date().toISOString());
    await updateStep(t.controller.services.store.db, run.id, 'agent-hello', 'succeeded', new Date().toISOString());
    await t.controller.services.engine.act('ev-run', 'inspect-done', { actor: agent, runId: run.id });
    const runs = (await log(`?after=${after}&type=run.`)).items;
    expect(runs.map((e) => [e.type, e.details?.run, e.details?.step ?? null])).toEqual([
      ['run.running', run.id, null],
      ['run.step', run.id, 'agent-hello'],
      ['run.succeeded', run.id, null],
    ]);
    const { Readable } = await import('node:stream');
    await t.controller.services.images.upload({ name: 'ev-image', kind: 'disk', body: Readable.from([Buffer.alloc(1024, 1)]) });
    await t.controller.services.images.delete('ev-image');
    expect((await log(`?after=${after}&type=image.`)).items.map((e) => e.type)).toEqual(['image.added', 'image.deleted']);
    const created = (await t.api('POST', '/api/v1/tokens', { name: 'ev-token', role: 'reader' })).json();
    await t.api('DELETE', '/api/v1/tokens/ev-token');
    const sec = (await log(`?after=${after}&type=security.token`)).items;
    expect(sec.map((e) => [e.type, e.details?.token])).toEqual([
      ['security.token-created', 'ev-token'],
      ['security.token-revoked', 'ev-token'],
    ]);
    expect(JSON.stringify(sec)).not.toContain(created.token);
  });

  it('sends heartbeats on an idle stream and frames each event with its seq as id', async () => {
    const stop = new AbortController();
    const head = (await log('')).next;
    const res = await fetch(`${url}/api/v1/events/stream?type=machine.enroll`, { headers: { authorization: `Bearer ${t.adminToken}`, 'last-event-id': String(head) }, signal: stop.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    const read = async (until: RegExp) => {
      while (!until.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
    };
    await read(/: heartbeat\n\n/);
    await t.api('POST', '/api/v1/machines', { name: 'framed' });
    await read(/data: .*\n\n/);
    stop.abort();
    const m = /id: (\d+)\ndata: (.*)\n\n/.exec(text)!;
    expect(Number(m[1])).toBeGreaterThan(head);
    expect(JSON.parse(m[2]!)).toMatchObject({ seq: Number(m[1]), type: 'machine.enroll', action: 'enroll' });
  });

  it.runIf(backend.name === 'postgres')('numbers events in commit order: an event committed late is not skipped by a reader that moved on', async () => {
    const store = t.controller.services.store;
    const base = (await log('')).next;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const insertedYet = new Promise<void>((r) => (inserted = r));
    const slow = store.transaction(async (trx) => {
      await appendEvent(trx, { type: 'security.test', at: new Date().toISOString(), actor: 'test', action: 'slow', reason: null, details: null });
      inserted();
      await gate;
    });
    await insertedYet;
    await store.transaction((trx) => appendEvent(trx, { type: 'security.test', at: new Date().toISOString(), actor: 'test', action: 'fast', reason: null, details: null }));
    const before = await log(`?after=${base}&type=security.test`);
    expect(before.items.map((e) => e.action)).toEqual(['fast']);
    release();
    await slow;
    const after = await log(`?after=${before.next}&type=security.test`);
    expect(after.items.map((e) => e.action)).toEqual(['slow']);
    expect(after.items[0]!.seq).toBeGreaterThan(before.items[0]!.seq);
  });
});
