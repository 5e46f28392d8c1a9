import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresBackend, pgAvailable } from '../support/backends.js';
import { startController, type TestController, type TestDatabase } from '../support/controller.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/core/clock.js';

/**
 * Two controller instances on one PostgreSQL database race the same transitions: the row
 * lock in the database, not process memory, decides. (Several controllers on one SQLite file
 * are separate processes; see the matching concurrency tests.)
 */
describe.runIf(pgAvailable)('two controllers on one PostgreSQL', () => {
  let db: TestDatabase;
  let a: TestController;
  let b: TestController;
  const clock = new FakeClock('2026-05-01T00:00:00.000Z');
  beforeAll(async () => {
    db = await postgresBackend.create();
    a = await startController(db, {}, { clock });
    // The second controller has its own data directory, as on another host.
    b = await startController({ ...db, dataDir: mkdtempSync(join(tmpdir(), 'plinth-b-')) }, {}, { clock });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('let exactly one of many concurrent identical transitions win', async () => {
    await a.api('POST', '/api/v1/machines', { name: 'race-1' });
    const token = a.adminToken;
    const attempts = Array.from({ length: 24 }, (_, i) => (i % 2 ? b : a).api('POST', '/api/v1/machines/race-1/actions/inspect', {}, token));
    const results = await Promise.all(attempts);
    const codes = results.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(1);
    expect(codes.filter((c) => c === 409)).toHaveLength(23);
    for (const r of results.filter((x) => x.statusCode === 409)) {
      expect(r.json().error.message).toBe('cannot inspect machine race-1: it is inspecting; allowed: abort');
    }
    const events = (await b.api('GET', '/api/v1/machines/race-1/events', undefined, token)).json().items;
    expect(events.filter((e: any) => e.action === 'inspect')).toHaveLength(1);
    expect((await a.api('GET', '/api/v1/machines/race-1/runs', undefined, token)).json().items).toHaveLength(1);
  });

  it('loses no update when both change the same machine at once', async () => {
    await a.api('POST', '/api/v1/machines', { name: 'race-2' });
    const token = a.adminToken;
    const writes = Array.from({ length: 30 }, (_, i) =>
      (i % 2 ? b : a).api('PATCH', '/api/v1/machines/race-2', { tags: { [`k${i}`]: `v${i}` } }, token),
    );
    const results = await Promise.all(writes);
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    const m = (await a.api('GET', '/api/v1/machines/race-2', undefined, token)).json();
    expect(Object.keys(m.tags).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `k${i}`).sort());
    expect(m.version).toBe(31);
  });

  it('time a machine out exactly once when both sweep', async () => {
    await a.api('POST', '/api/v1/machines', { name: 'race-3' });
    await a.api('POST', '/api/v1/machines/race-3/actions/inspect', {}, a.adminToken);
    clock.advance(60 * 60_000);
    const moved = await Promise.all([a.controller.sweeper.sweepOnce(), b.controller.sweeper.sweepOnce(), a.controller.sweeper.sweepOnce(), b.controller.sweeper.sweepOnce()]);
    // race-1 is overdue too: two machines, each moved by exactly one sweep.
    expect(moved.reduce((x, y) => x + y, 0)).toBe(2);
    const events = (await a.api('GET', '/api/v1/machines/race-3/events', undefined, a.adminToken)).json().items;
    expect(events.filter((e: any) => e.action === 'timeout')).toHaveLength(1);
  });

  it.each([
    ['with a manufacturer', { serial: 'ONE-SERIAL', manufacturer: 'Acme' }],
    ['without a manufacturer', { serial: 'TWO-SERIAL' }],
    ['by MAC', { macs: ['52:54:00:12:34:99'] }],
    ['by UUID', { systemUuid: '5a5a5a5a-1111-2222-3333-444455556666' }],
  ])('enrol one machine once when both create it at once (%s)', async (label, identity) => {
    const token = a.adminToken;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? b : a).api('POST', '/api/v1/machines', { name: `same-${label.length}-${i}`, identity }, token)),
    );
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.statusCode !== 201)) {
      expect(r.statusCode, r.body).toBe(409);
      expect(r.json().error.message).toMatch(/^identity\.(serial|macs|systemUuid)/);
    }
  });
});
