import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { Enroller, type EnrolPolicy } from '../../src/inventory/enrol.js';
import { normalizeIdentity } from '../../src/inventory/identity.js';
import { PlinthError } from '../../src/core/errors.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * The one path from a reported identity to a machine (boot requests, appliance enlistment,
 * inspection facts), each reporter's policy passed in, against the real database.
 */
describe.each(backends)('finding or enrolling a reported machine on $name', (backend) => {
  let t: TC;
  let enroller: Enroller;
  const actor = { kind: 'system' as const, name: 'test' };
  beforeAll(async () => {
    t = await freshController(backend);
    const { store, clock, inventory } = t.controller.services;
    enroller = new Enroller({ store, clock, inventory });
  });
  afterAll(async () => t?.close());

  const bootLike = (o: Partial<EnrolPolicy> = {}): EnrolPolicy => ({
    actor,
    known: { lock: false, absorb: false },
    enrol: async () => ({ name: `m-${Math.random().toString(16).slice(2, 10)}`, input: {}, reason: 'reported' }),
    ...o,
  });

  it('a report that may not teach identity (a boot request) changes nothing on the machine it names', async () => {
    const m = await t.controller.services.inventory.create({ name: 'quiet', identity: { macs: ['52:54:00:e0:00:01'] } }, actor);
    const before = await snapshot(t.controller);
    const r = await enroller.findOrEnrol(normalizeIdentity({ serial: 'SER-FORGED', systemUuid: '0b7e0f3c-1d2a-4c5b-9e8f-7a6b5c4d3e2f', macs: ['52:54:00:e0:00:01', '52:54:00:e0:00:99'] }), bootLike());
    expect(r).toMatchObject({ outcome: 'matched', matchedBy: 'mac', machine: { id: m.id } });
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('a MAC already held by a machine with another UUID does not merge two machines: the new one is enrolled, the MAC stays, a conflict says so', async () => {
    const { inventory } = t.controller.services;
    const old = await inventory.create({ name: 'nic-donor', identity: { systemUuid: '6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d', macs: ['52:54:00:e6:00:01'] } }, actor);
    const report = normalizeIdentity({ systemUuid: '7b2e3d4c-5f6a-4b7c-9d8e-0f1a2b3c4d5e', macs: ['52:54:00:e6:00:01', '52:54:00:e6:00:02'] });
    const r = await enroller.findOrEnrol(report, { ...bootLike(), known: { lock: true, absorb: true } });
    expect(r.outcome).toBe('created');
    expect(r.machine).toMatchObject({
      identity: { systemUuid: '7b2e3d4c-5f6a-4b7c-9d8e-0f1a2b3c4d5e', macs: ['52:54:00:e6:00:02'] },
      identityConflicts: [{ field: 'mac', kind: 'other-machine', reported: '52:54:00:e6:00:01', machineId: old.id }],
    });
    expect(await inventory.get(old.id)).toMatchObject({ identity: { systemUuid: '6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d', macs: ['52:54:00:e6:00:01'] }, identityConflicts: [] });
  });

  it('the enrolment gate refuses an unknown machine and nothing is written', async () => {
    const before = await snapshot(t.controller);
    const r = await enroller.findOrEnrol(normalizeIdentity({ macs: ['52:54:00:e1:00:01'] }), bootLike({ admit: () => 'enrolment is switched off' }));
    expect(r).toEqual({ outcome: 'refused', machine: null, why: 'enrolment is switched off' });
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('a reporter may refuse a known machine (linked elsewhere): nothing is linked or learned', async () => {
    const m = await t.controller.services.inventory.create({ name: 'linked', identity: { macs: ['52:54:00:e2:00:01'] } }, actor);
    const before = await snapshot(t.controller);
    const r = await enroller.findOrEnrol(normalizeIdentity({ serial: 'SER-E2', macs: ['52:54:00:e2:00:01'] }), {
      ...bootLike(),
      known: { lock: true, absorb: true, refuse: (x) => `machine ${x.name} is linked elsewhere`, set: () => ({ provider_ref: 'other' }) },
    });
    expect(r).toMatchObject({ outcome: 'refused', machine: { id: m.id }, why: 'machine linked is linked elsewhere' });
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('a reporter that links and absorbs (enlist) sets its columns and teaches the machine what it lacked', async () => {
    const m = await t.controller.services.inventory.create({ name: 'learner', identity: { macs: ['52:54:00:e3:00:01'] } }, actor);
    const r = await enroller.findOrEnrol(normalizeIdentity({ serial: 'SER-E3', manufacturer: 'ACME', macs: ['52:54:00:e3:00:01', '52:54:00:e3:00:02'] }), {
      ...bootLike(),
      known: { lock: true, absorb: true, set: () => ({ power_state: 'on', power_source: 'enlist' }) },
    });
    expect(r.outcome).toBe('matched');
    expect(r.machine).toMatchObject({ id: m.id, power: { state: 'on', source: 'enlist' }, identity: { serial: 'SER-E3', manufacturer: 'ACME', macs: ['52:54:00:e3:00:01', '52:54:00:e3:00:02'] } });
  });

  it('concurrent reports of one unknown machine enrol it once (a lost insert retries and finds it)', async () => {
    const identity = normalizeIdentity({ systemUuid: '5f0c3a1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b', macs: ['52:54:00:e4:00:01'] });
    const rs = await Promise.all(Array.from({ length: 4 }, () => enroller.findOrEnrol(identity, bootLike())));
    const ids = new Set(rs.map((r) => r.machine?.id));
    expect(ids.size).toBe(1);
    expect(rs.filter((r) => r.outcome === 'created')).toHaveLength(1);
    const rows = await t.controller.services.store.db.selectFrom('machines').select('id').where('system_uuid', '=', identity.systemUuid).execute();
    expect(rows).toHaveLength(1);
  });

  it('facts that identify another known machine are refused, and nothing is absorbed', async () => {
    const { store, inventory } = t.controller.services;
    const self = await inventory.create({ name: 'self', identity: { macs: ['52:54:00:e5:00:01'] } }, actor);
    await inventory.create({ name: 'owner', identity: { serial: 'SER-E5', macs: ['52:54:00:e5:00:02'] } }, actor);
    const before = await snapshot(t.controller);
    const facts = normalizeIdentity({ serial: 'SER-E5', macs: ['52:54:00:e5:00:01', '52:54:00:e5:00:03'] });
    const err = await store.transaction((trx) => enroller.absorbReport(trx, self, facts, actor)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlinthError);
    expect((err as PlinthError).message).toBe('these facts identify machine owner (by serial), not self whose run token was used');
    expect(await snapshot(t.controller)).toBe(before);
  });
});
