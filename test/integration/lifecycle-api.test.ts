import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const agent = { kind: 'agent' as const, name: 'installer' };
const system = { kind: 'system' as const, name: 'test' };

describe.each(backends)('lifecycle on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-03-01T12:00:00.000Z');
  beforeAll(async () => {
    t = await freshController(backend, {}, { clock });
    // Deploys need an image in the store; its bytes do not matter here.
    const { Readable } = await import('node:stream');
    await t.controller.services.images.upload({ name: 'debian-12', kind: 'disk', body: Readable.from([Buffer.alloc(1 << 20, 1)]) });
  });
  afterAll(async () => t?.close());
  const engine = () => t.controller.services.engine;
  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();
  // Every action a second later, so runs have distinct creation times.
  const act = (name: string, action: string, body: object = {}) => {
    clock.advance(1000);
    return t.api('POST', `/api/v1/machines/${name}/actions/${action}`, body);
  };

  it('inspects: a run, a deadline, the installer reports, the machine becomes available', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'life-1' });
    const r = await act('life-1', 'inspect', { reason: 'new hardware' });
    expect(r.statusCode, r.body).toBe(200);
    const { machine: m, run } = r.json();
    expect(m.state).toBe('inspecting');
    expect(m.targetState).toBe('available');
    expect(m.stateDeadline).toBe('2026-03-01T12:10:01.000Z');
    expect(run).toMatchObject({ kind: 'inspect', status: 'pending', machineId: m.id, createdBy: 'operator:admin' });
    expect(run.steps.map((s: any) => s.name)).toEqual(['power-on', 'boot-installer', 'agent-hello', 'report-facts', 'match-profile']);
    expect(m.currentRunId).toBe(run.id);

    await engine().act('life-1', 'installer-started', { actor: agent, runId: run.id });
    expect((await machine('life-1')).state).toBe('inspect-wait');
    await engine().act('life-1', 'inspect-done', { actor: agent, runId: run.id });
    const done = await machine('life-1');
    expect(done).toMatchObject({ state: 'available', targetState: null, stateDeadline: null, currentRunId: null });
    const runs = (await t.api('GET', '/api/v1/machines/life-1/runs')).json().items;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: run.id, status: 'succeeded' });
    expect(runs[0].finishedAt).not.toBeNull();
    const ev = (await t.api('GET', '/api/v1/machines/life-1/events')).json().items;
    expect(ev.map((e: any) => [e.actor, e.action, e.fromState, e.toState])).toEqual([
      ['operator:admin', 'enroll', null, 'enrolled'],
      ['operator:admin', 'inspect', 'enrolled', 'inspecting'],
      ['agent:installer', 'installer-started', 'inspecting', 'inspect-wait'],
      ['agent:installer', 'inspect-done', 'inspect-wait', 'available'],
    ]);
    expect(ev[1].reason).toBe('new hardware');
    expect(ev[1].details.run).toBe(run.id);
  });

  it('refuses an illegal action with 409 naming the state and the allowed actions, changing nothing', async () => {
    await act('life-1', 'deploy');
    const before = await snapshot(t.controller);
    const r = await act('life-1', 'inspect');
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toEqual({
      code: 'invalid_transition',
      message: 'cannot inspect machine life-1: it is deploying; allowed: abort',
      details: { machine: 'life-1', state: 'deploying', action: 'inspect', allowed: ['abort'] },
    });
    const unknown = await act('life-1', 'explode');
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.message).toMatch(/^action: must be one of inspect, deploy/);
    const badWipe = await act('life-1', 'abort', { wipe: 'full' });
    expect(badWipe.statusCode).toBe(400);
    expect(badWipe.json().error.message).toBe('wipe: only applies to release and wipe, not abort');
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('aborts into the failed state with lastError, retries with a new run, refuses stale agent reports', async () => {
    const first = (await machine('life-1')).currentRunId;
    const a = await act('life-1', 'abort', { reason: 'wrong image' });
    expect(a.json().machine.state).toBe('deploy-failed');
    expect(a.json().machine.lastError).toMatchObject({ code: 'aborted', stage: 'deploying', message: 'wrong image' });
    const r = await act('life-1', 'retry');
    const second = r.json().run.id;
    expect(second).not.toBe(first);
    expect(r.json().machine.lastError).toBeNull();
    await expect(engine().act('life-1', 'installer-started', { actor: agent, runId: first })).rejects.toThrow(/is not the current run/);
    await engine().act('life-1', 'installer-started', { actor: agent, runId: second });
    await engine().act('life-1', 'deploy-done', { actor: agent, runId: second });
    expect((await machine('life-1')).state).toBe('deployed');
    const runs = (await t.api('GET', '/api/v1/machines/life-1/runs')).json().items;
    expect(runs.map((x: any) => [x.kind, x.status])).toEqual([
      ['deploy', 'succeeded'],
      ['deploy', 'aborted'],
      ['inspect', 'succeeded'],
    ]);
  });

  it('protected refuses destructive actions; maintenance stops automatic ones', async () => {
    await t.api('PATCH', '/api/v1/machines/life-1', { protected: true });
    for (const action of ['release', 'redeploy']) {
      const r = await act('life-1', action);
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('protected');
      expect(r.json().error.message).toMatch(/^machine life-1 is protected; '.*' would destroy its contents/);
    }
    await t.api('PATCH', '/api/v1/machines/life-1', { protected: false, maintenance: true, maintenanceReason: 'BMC flaky' });
    await t.api('POST', '/api/v1/machines', { name: 'life-2', maintenance: true, maintenanceReason: 'rack move' });
    await expect(engine().act('life-2', 'inspect', { actor: system })).rejects.toThrow(/in maintenance \(rack move\); automatic action 'inspect' refused/);
    // An operator may still act on a machine in maintenance.
    const r = await act('life-1', 'release', { wipe: 'none' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().machine.state).toBe('available');
    expect(r.json().run).toBeNull();
  });

  it('release wipes by default and honours an explicit mode', async () => {
    await t.api('PATCH', '/api/v1/machines/life-1', { maintenance: false });
    const d = await act('life-1', 'deploy');
    await engine().act('life-1', 'installer-started', { actor: agent, runId: d.json().run.id });
    await engine().act('life-1', 'deploy-done', { actor: agent, runId: d.json().run.id });
    const r = await act('life-1', 'release');
    expect(r.json().machine.state).toBe('wiping');
    expect(r.json().run).toMatchObject({ kind: 'wipe', params: { wipe: 'quick' } });
    const ev = (await t.api('GET', '/api/v1/machines/life-1/events')).json().items.at(-1);
    expect(ev.details).toMatchObject({ wipe: 'quick' });
  });

  it('times out overdue machines into *-failed with the stage reached, once, and leaves maintenance alone', async () => {
    for (const name of ['slow-1', 'slow-2', 'slow-3']) {
      await t.api('POST', '/api/v1/machines', { name });
      await act(name, 'inspect');
    }
    // The boot service records stages; here the machine got as far as fetching its kernel.
    await t.controller.services.store.db.updateTable('machines').set({ last_stage: 'kernel-fetched' }).where('name', '=', 'slow-1').execute();
    await t.api('PATCH', '/api/v1/machines/slow-3', { maintenance: true });
    clock.advance(9 * 60_000);
    expect(await t.controller.sweeper.sweepOnce()).toBe(0);
    clock.advance(2 * 60_000);
    const [a, b] = await Promise.all([t.controller.sweeper.sweepOnce(), t.controller.sweeper.sweepOnce()]);
    // life-1 (wiping since the previous test) is overdue too.
    expect(a + b).toBe(3);
    const s1 = await machine('slow-1');
    expect(s1.state).toBe('inspect-failed');
    expect(s1.lastError).toMatchObject({ code: 'timeout', stage: 'kernel-fetched' });
    expect((await machine('slow-2')).lastError).toMatchObject({ code: 'timeout', stage: 'inspecting' });
    expect((await machine('slow-3')).state).toBe('inspecting');
    expect((await machine('life-1')).state).toBe('wipe-failed');
    const runs = (await t.api('GET', '/api/v1/machines/slow-1/runs')).json().items;
    expect(runs[0]).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
    const timeouts = (await t.api('GET', '/api/v1/machines/slow-1/events')).json().items.filter((e: any) => e.action === 'timeout');
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0].actor).toBe('system:controller');
  });

  it('retires and unretires', async () => {
    expect((await act('slow-2', 'retire')).json().machine.state).toBe('retired');
    const r = await act('slow-2', 'inspect');
    expect(r.statusCode).toBe(409);
    expect(r.json().error.details.allowed).toEqual(['unretire']);
    expect((await act('slow-2', 'unretire')).json().machine.state).toBe('enrolled');
  });

  it('pages events and runs with cursors', async () => {
    const all = (await t.api('GET', '/api/v1/machines/life-1/events?limit=1000')).json().items.map((e: any) => e.id);
    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const page: any = (await t.api('GET', `/api/v1/machines/life-1/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json();
      paged.push(...page.items.map((e: any) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expect(all.length).toBeGreaterThan(10);
    const runs = (await t.api('GET', '/api/v1/machines/life-1/runs?limit=1000')).json().items.map((r: any) => r.id);
    const first = (await t.api('GET', '/api/v1/machines/life-1/runs?limit=2')).json();
    const second = (await t.api('GET', `/api/v1/machines/life-1/runs?limit=2&cursor=${first.nextCursor}`)).json();
    expect([...first.items, ...second.items].map((r: any) => r.id)).toEqual(runs.slice(0, 4));
  });

  it('serves the transition table', async () => {
    const r = (await t.api('GET', '/api/v1/lifecycle')).json();
    expect(r.states).toContain('deploy-wait');
    expect(r.transitions.find((x: any) => x.action === 'release' && x.to === 'wiping')).toMatchObject({ from: 'deployed', destructive: true, run: 'wipe' });
  });
});
