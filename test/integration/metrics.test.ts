import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter } from 'prom-client';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { hasSeries, parsePrometheus, valueOf } from '../support/prometheus.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const agent = { kind: 'agent' as const, name: 'installer' };

describe.each(backends)('metrics on $name', (backend) => {
  let t: TC;
  let reader: string;
  const clock = new FakeClock('2026-04-01T08:00:00.000Z');
  beforeAll(async () => {
    t = await freshController(backend, {}, { clock });
    reader = (await t.api('POST', '/api/v1/tokens', { name: 'prometheus', role: 'reader' })).json().token;
  });
  afterAll(async () => t?.close());

  const scrape = async () => {
    const r = await t.inject('GET', '/metrics', { token: reader });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(r.body);
  };

  it('needs a reader token (metrics.public is off by default)', async () => {
    expect((await t.inject('GET', '/metrics')).statusCode).toBe(401);
    expect((await t.inject('GET', '/metrics', { token: 'nope' })).statusCode).toBe(401);
    await scrape();
  });

  it('counts machines by state and power from the database at each scrape, every state listed', async () => {
    const before = await scrape();
    for (const state of ['enrolled', 'available', 'deployed', 'retired']) expect(hasSeries(before, 'plinth_machines', { state })).toBe(true);
    const enrolled = valueOf(before, 'plinth_machines', { state: 'enrolled' });
    const unknownPower = valueOf(before, 'plinth_machines_power', { power: 'unknown' });
    for (const name of ['m-1', 'm-2', 'm-3']) expect((await t.api('POST', '/api/v1/machines', { name })).statusCode).toBe(201);
    const after = await scrape();
    expect(valueOf(after, 'plinth_machines', { state: 'enrolled' })).toBe(enrolled + 3);
    expect(valueOf(after, 'plinth_machines_power', { power: 'unknown' })).toBe(unknownPower + 3);
    expect(after.find((f) => f.name === 'plinth_machines')?.type).toBe('gauge');
  });

  it('counts transitions by from/to and times runs by kind and result', async () => {
    const before = await scrape();
    const t0 = valueOf(before, 'plinth_transitions_total', { from: 'enrolled', to: 'inspecting' });
    const inspectRuns = { kind: 'inspect', result: 'succeeded' };
    const runsBefore = valueOf(before, 'plinth_run_duration_seconds_count', inspectRuns);

    await t.api('POST', '/api/v1/machines', { name: 'timed', identity: { macs: ['52:54:00:0d:00:01'] } });
    const { run, machine } = (await t.api('POST', '/api/v1/machines/timed/actions/inspect', {})).json();
    clock.advance(30_000);
    await t.controller.services.engine.act('timed', 'installer-started', { actor: agent, runId: run.id });
    clock.advance(60_000);
    await t.controller.inspection.complete(machine.id, run.id, makeFacts({ macs: ['52:54:00:0d:00:01'] }), clock.now().toISOString());

    const after = await scrape();
    expect(valueOf(after, 'plinth_transitions_total', { from: 'enrolled', to: 'inspecting' })).toBe(t0 + 1);
    expect(valueOf(after, 'plinth_transitions_total', { from: 'inspect-wait', to: 'available' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'plinth_run_duration_seconds_count', inspectRuns)).toBe(runsBefore + 1);
    // The run took 90 s by the controller's clock: in the 120 s bucket, not the 60 s one.
    expect(valueOf(after, 'plinth_run_duration_seconds_bucket', { ...inspectRuns, le: '120' })).toBe(runsBefore + 1);
    expect(valueOf(after, 'plinth_run_duration_seconds_bucket', { ...inspectRuns, le: '60' })).toBe(0);
    expect(valueOf(after, 'plinth_run_duration_seconds_sum', inspectRuns)).toBeGreaterThanOrEqual(90);
  });

  it('counts boot requests by stage and status', async () => {
    const before = await scrape();
    const chain = valueOf(before, 'plinth_boot_requests_total', { stage: 'chain-script', code: '200' });
    expect((await t.inject('GET', '/boot.ipxe', { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    expect((await t.inject('GET', '/boot.ipxe', { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    // No installer is built in this data directory: the kernel request is a 404, counted as such.
    expect((await t.inject('GET', '/boot/installer/vmlinuz')).statusCode).toBe(404);
    const after = await scrape();
    expect(valueOf(after, 'plinth_boot_requests_total', { stage: 'chain-script', code: '200' })).toBe(chain + 2);
    expect(valueOf(after, 'plinth_boot_requests_total', { stage: 'kernel', code: '404' })).toBe(1);
    // Only what was asked for is counted.
    expect(hasSeries(after, 'plinth_boot_requests_total', { stage: 'machine-script' })).toBe(false);
  });

  it('times provider calls and counts their failures by provider and operation', async () => {
    const provider = t.controller.registry.create('manual', { address: 'rack-7' });
    const ctx = { timeoutMs: 1000, log: { debug() {}, info() {}, warn() {}, error() {} } };
    await provider.power.getPowerState('m-1', ctx);
    await expect(provider.power.setPowerState('m-1', 'on', ctx)).rejects.toThrow(/no power control/);
    const after = await scrape();
    expect(valueOf(after, 'plinth_provider_call_duration_seconds_count', { provider: 'manual', operation: 'getPowerState' })).toBe(1);
    expect(valueOf(after, 'plinth_provider_call_duration_seconds_count', { provider: 'manual', operation: 'setPowerState' })).toBe(1);
    expect(valueOf(after, 'plinth_provider_call_errors_total', { provider: 'manual', operation: 'setPowerState', failure: 'unsupported' })).toBe(1);
    expect(hasSeries(after, 'plinth_provider_call_errors_total', { provider: 'manual', operation: 'getPowerState' })).toBe(false);
  });

  it('lets another component add its metric families (extend)', async () => {
    let deliveries!: Counter<'result'>;
    t.controller.metrics.extend((registry) => {
      deliveries = new Counter({ name: 'plinth_test_deliveries_total', help: 'deliveries', labelNames: ['result'], registers: [registry] });
    });
    deliveries.inc({ result: 'ok' }, 2);
    expect(valueOf(await scrape(), 'plinth_test_deliveries_total', { result: 'ok' })).toBe(2);
  });
});

describe('metrics.public', () => {
  it('serves /metrics without a token when set', async () => {
    const t = await freshController(backends[0]!, { metrics: { public: true } });
    try {
      const r = await t.inject('GET', '/metrics');
      expect(r.statusCode).toBe(200);
      expect(parsePrometheus(r.body).some((f) => f.name === 'plinth_machines')).toBe(true);
    } finally {
      await t.close();
    }
  });
});
