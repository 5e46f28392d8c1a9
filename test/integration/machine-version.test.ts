import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { FakeClock, iso } from '../../src/core/clock.js';
import { recordStage } from '../../src/runs/trace.js';
import { claimJobs } from '../../src/power/jobs.js';
import { requireMachine, updateMachineRow, updateMachineRows } from '../../src/inventory/machine-rows.js';
import { normalizeIdentity } from '../../src/inventory/identity.js';
import { Enroller } from '../../src/inventory/enrol.js';
import type { Machine } from '../../src/inventory/machine.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * `version` counts every change a reader could see: each kind of write to a machine (not only
 * the operator's and the lifecycle's) bumps it and sets updated_at to the write's time.
 */
describe.each(backends)('every kind of write to a machine bumps its version on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-06-01T08:00:00.000Z');
  const actor = { kind: 'system' as const, name: 'test' };
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { clock, installer: () => null });
  });
  afterAll(async () => t?.close());

  const row = (id: string) =>
    t.controller.services.store.db.selectFrom('machines').select(['version', 'updated_at', 'boot_base_url', 'last_stage', 'power_expected', 'power_state', 'state_deadline', 'current_run_id']).where('id', '=', id).executeTakeFirstOrThrow();
  /** Moves the clock on, so a write's updated_at is told apart from the one before. */
  const tick = () => {
    clock.advance(1000);
    return iso(clock.now());
  };

  it('a boot request (the controller address it came in on, its boot stages)', async () => {
    const m = await t.controller.services.inventory.create({ name: 'boots-1', identity: { macs: ['52:54:00:aa:00:01'] } }, actor, { state: 'available' });
    const before = await row(m.id);
    const now = tick();
    const r = await t.controller.app.inject({ method: 'GET', url: '/boot/machine.ipxe?mac=52:54:00:aa:00:01', headers: { host: '10.0.2.2:7708' } });
    expect(r.body).toContain('local');
    const after = await row(m.id);
    expect(after.boot_base_url).toBe('http://10.0.2.2:7708');
    expect(after.last_stage).toBe('local-boot');
    expect(Number(after.version)).toBeGreaterThan(Number(before.version));
    expect(after.updated_at).toBe(now);
  });

  it('a boot stage recorded on its own', async () => {
    const m = await t.controller.services.inventory.create({ name: 'stages-1' }, actor);
    const before = await row(m.id);
    const now = tick();
    await recordStage(t.controller.services.store.db, { machineId: m.id, attemptId: null, runId: null, at: now, stage: 'kernel' });
    const after = await row(m.id);
    expect(after.last_stage).toBe('kernel');
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.updated_at).toBe(now);
  });

  it('the power a transition makes the lifecycle expect', async () => {
    const m = await t.controller.services.inventory.create({ name: 'power-1' }, actor);
    const now = tick();
    const r = await t.controller.services.engine.act(m.id, 'inspect', { actor });
    const after = await row(m.id);
    expect(after.power_expected).toBe('on');
    // The machine as the transition left it, before power_expected was written: an older version.
    expect(r.machine.power.expected).toBeNull();
    expect(Number(after.version)).toBeGreaterThan(r.machine.version);
    expect(after.updated_at).toBe(now);
  });

  it('a deadline moved by a run, and only while the machine still runs that run', async () => {
    const inspecting = (await t.controller.services.inventory.create({ name: 'deadline-1' }, actor)).id;
    await t.controller.services.engine.act(inspecting, 'inspect', { actor });
    const before = await row(inspecting);
    expect(before.current_run_id).not.toBeNull();
    expect(before.state_deadline).not.toBeNull();
    const now = tick();
    const until = clock.now().getTime() + 3_600_000;
    await t.controller.services.engine.extendDeadline(inspecting, 'another-run', until);
    expect(await row(inspecting)).toEqual(before);
    await t.controller.services.engine.extendDeadline(inspecting, before.current_run_id!, until);
    const after = await row(inspecting);
    expect(after.state_deadline).toBe(iso(new Date(until)));
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.updated_at).toBe(now);
  });

  it('a write to several machines at once (what a profile or pool deleted with force does), and no other machine', async () => {
    const { inventory, store } = t.controller.services;
    const [a, b, c] = await Promise.all(['many-1', 'many-2', 'many-3'].map((name) => inventory.create({ name }, actor)));
    const before = await Promise.all([a!, b!, c!].map((m) => row(m.id)));
    const now = tick();
    expect(await updateMachineRows(store.db, (eb) => eb('id', 'in', [a!.id, b!.id]), { quota_held: 0, profile_id: null }, now)).toBe(2);
    const after = await Promise.all([a!, b!, c!].map((m) => row(m.id)));
    expect(after.map((r) => Number(r.version))).toEqual([Number(before[0]!.version) + 1, Number(before[1]!.version) + 1, Number(before[2]!.version)]);
    expect(after.map((r) => r.updated_at)).toEqual([now, now, before[2]!.updated_at]);
  });

  it('a power reading a site manager reports', async () => {
    const a = await t.api('POST', '/api/v1/appliances', { name: 'far-bmc', type: 'redfish', address: 'https://192.0.2.10', site: 'lab', username: 'u', password: 'p' });
    expect(a.statusCode, a.body).toBe(201);
    const ref = '/redfish/v1/Systems/1';
    const m = await t.controller.services.inventory.create({ name: 'far-1', provider: { applianceId: a.json().id, ref } }, actor);
    const { power, store } = t.controller.services;
    const job = await power.enqueueForMachine(m.id, () => ({ kind: 'status', ref }));
    const claimed = await claimJobs(store, { site: 'lab', claimer: 'manager:lab', limit: 1, leaseMs: 60_000, now: clock.now() });
    expect(claimed.map((j) => j.id)).toEqual([job.id]);
    const before = await row(m.id);
    const now = tick();
    expect(await power.complete(job.id, 'manager:lab', { status: 'succeeded', result: { power: 'on' } })).toBe(true);
    const after = await row(m.id);
    expect(after.power_state).toBe('on');
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.updated_at).toBe(now);
  });

  it('MACs and tags written (new MACs an inspection reports, tags an operator sets)', async () => {
    const { inventory, store } = t.controller.services;
    const enroller = new Enroller({ store, clock, inventory });
    const m = await inventory.create({ name: 'macs-1', identity: { macs: ['52:54:00:ab:00:01'] } }, actor);
    let before = await row(m.id);
    let now = tick();
    const reported = normalizeIdentity({ serial: 'MACS-1-SERIAL', macs: ['52:54:00:ab:00:01', '52:54:00:ab:00:02'] });
    const absorbed = await store.transaction(async (trx) => enroller.absorbReport(trx, await requireMachine(trx, store.dialect, m.id), reported, actor));
    expect(absorbed.identity.macs).toEqual(['52:54:00:ab:00:01', '52:54:00:ab:00:02']);
    expect(absorbed.identity.serial).toBe('MACS-1-SERIAL');
    // The machine it returns, built from what it wrote, is the row as read back.
    expect(absorbed).toEqual(await requireMachine(store.db, store.dialect, m.id));
    let after = await row(m.id);
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.updated_at).toBe(now);
    before = after;
    now = tick();
    const r = await t.api('PATCH', `/api/v1/machines/${m.id}`, { tags: { rack: 'r1' } });
    expect(r.statusCode, r.body).toBe(200);
    after = await row(m.id);
    expect(Number(after.version)).toBe(Number(before.version) + 1);
    expect(after.updated_at).toBe(now);
  });
});

/**
 * A transition inside LifecycleEngine.withMachine reuses the machine the transaction loaded
 * while its version says nothing wrote it since; what the transaction itself wrote before the
 * transition is seen by it (its guards) and by its result.
 */
describe.each(backends)('transitions within one locked transaction on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-06-01T08:00:00.000Z');
  const actor = { kind: 'system' as const, name: 'test' };
  beforeAll(async () => {
    t = await freshController(backend, {}, { clock, installer: () => null });
  });
  afterAll(async () => t?.close());

  it('a write to the row before the transition: its refusal sees the maintenance set', async () => {
    const { inventory, engine } = t.controller.services;
    const m = await inventory.create({ name: 'locked-1' }, actor);
    const err = await engine
      .withMachine(m.id, async (tx) => {
        await updateMachineRow(tx.trx, m.id, { maintenance: 1, maintenance_reason: 'cabling' }, iso(clock.now()));
        return tx.act('inspect', { actor });
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'maintenance' });
    expect((await inventory.get(m.id)).state).toBe('enrolled');
  });

  it('MACs added before the transition (an inspection\'s report): its result lists them, and the next transition sees them', async () => {
    const { inventory, engine, store } = t.controller.services;
    const enroller = new Enroller({ store, clock, inventory });
    const m = await inventory.create({ name: 'locked-2', identity: { macs: ['52:54:00:ac:00:01'] } }, actor);
    const [inspecting, failed] = await engine.withMachine(m.id, async (tx) => {
      const absorb = (machine: Machine, macs: string[]) => enroller.absorbReport(tx.trx, machine, normalizeIdentity({ macs }), actor);
      await absorb(tx.machine, ['52:54:00:ac:00:01', '52:54:00:ac:00:02']);
      const a = await tx.act('inspect', { actor });
      await absorb(a.machine, ['52:54:00:ac:00:01', '52:54:00:ac:00:02', '52:54:00:ac:00:03']);
      const b = await tx.act('fail', { actor, runId: a.machine.currentRunId!, error: { code: 'x', message: 'stop' } });
      return [a.machine, b.machine];
    });
    expect(inspecting.identity.macs).toEqual(['52:54:00:ac:00:01', '52:54:00:ac:00:02']);
    expect(failed.identity.macs).toEqual(['52:54:00:ac:00:01', '52:54:00:ac:00:02', '52:54:00:ac:00:03']);
    expect(failed.state).toBe('inspect-failed');
    const stored = await inventory.get(m.id);
    expect(stored.identity.macs).toEqual(failed.identity.macs);
  });

  it('two transitions with nothing written between: the second starts from the first one\'s result, as stored', async () => {
    const { inventory, engine } = t.controller.services;
    const m = await inventory.create({ name: 'locked-3', identity: { macs: ['52:54:00:ad:00:01'] }, tags: { rack: 'r2' } }, actor);
    const last = await engine.withMachine(m.id, async (tx) => {
      const a = await tx.act('inspect', { actor });
      // A run id that is not the current one is refused: the reused row has the run the first transition started.
      await expect(tx.act('fail', { actor, runId: 'not-the-run', error: { code: 'x', message: 'stop' } })).rejects.toMatchObject({ code: 'conflict' });
      return (await tx.act('abort', { actor: { kind: 'operator', name: 'test' }, runId: a.machine.currentRunId!, error: { code: 'x', message: 'stop' } })).machine;
    });
    // The power the lifecycle expects is written after the result, in the same transaction (a transactional listener).
    const { updatedAt: _u, version: _v, power: _p, ...stored } = await inventory.get(m.id);
    const { updatedAt: _u2, version: _v2, power: _p2, ...returned } = last;
    expect(returned).toEqual(stored);
    expect(returned).toMatchObject({ state: 'inspect-failed', currentRunId: null, identity: { macs: ['52:54:00:ad:00:01'] }, tags: { rack: 'r2' } });
  });
});
