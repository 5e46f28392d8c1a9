import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, startController } from '../support/controller.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { Manager } from '../../src/manager/manager.js';
import { defaultRegistry } from '../../src/controller.js';
import { createLogger } from '../../src/core/logger.js';
import { claimJobs } from '../../src/power/jobs.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/** Appliances, enlistment and the lifecycle driving power and boot devices, against a Redfish service. */
describe.each(backends)('appliances and power on $name', (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  const powerChanges: { state: string; bootTarget: string }[] = [];
  beforeAll(async () => {
    peer = await startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'Off', onPowerChange: (_id, state, d) => powerChanges.push({ state, bootTarget: d.bootTarget }) });
    t = await freshController(backend, { providers: { jobDeadline: '20s', timeout: '5s' } });
    t.controller.power.start();
  });
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  it('registers an appliance with its password encrypted at rest and never returned', async () => {
    const r = await t.api('POST', '/api/v1/appliances', { name: 'bmc-1', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ name: 'bmc-1', type: 'redfish', hasPassword: true });
    expect(r.body).not.toContain('calvin');
    const list = await t.api('GET', '/api/v1/appliances');
    expect(list.body).not.toContain('calvin');
    expect(list.body).not.toMatch(/password_enc|"password"/);
    const row = await t.controller.services.store.db.selectFrom('appliances').selectAll().where('name', '=', 'bmc-1').executeTakeFirstOrThrow();
    expect(row.password_enc).toMatch(/^v1:/);
    expect(row.password_enc).not.toContain('calvin');
  });

  it('rejects bad appliances naming the field', async () => {
    const bad: [object, number, RegExp][] = [
      [{ name: 'x', type: 'hp-magic', address: 'https://x' }, 400, /^type: must be one of/],
      [{ name: 'x', type: 'redfish', address: 'not a url' }, 400, /^address: 'not a url' is not a URL/],
      [{ name: 'x', type: 'ipmi', address: 'bmc host' }, 400, /^address: 'bmc host' is not host\[:port\]/],
      [{ name: 'x', type: 'qemu', address: 'relative/lab' }, 400, /^address: .* absolute path/],
      [{ name: 'bmc-1', type: 'redfish', address: peer.url }, 409, /^name 'bmc-1' is already in use/],
      [{ name: 'x', type: 'redfish', address: peer.url, password: 7 }, 400, /^password: must be string/],
    ];
    for (const [body, status, message] of bad) {
      const r = await t.api('POST', '/api/v1/appliances', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(status);
      expect(r.json().error.message).toMatch(message);
    }
    expect((await t.api('GET', '/api/v1/appliances')).json().items).toHaveLength(1);
  });

  it('enlists the systems behind an appliance once, matching them on the next enlist', async () => {
    const r = await t.api('POST', '/api/v1/appliances/bmc-1/enlist', {});
    expect(r.statusCode, r.body).toBe(200);
    const [e] = r.json().items;
    const sys = peer.system() as { UUID: string; SerialNumber: string };
    expect(e.outcome).toBe('created');
    expect(e.machine).toMatchObject({ state: 'enrolled', provider: { ref: peer.systemPath }, identity: { systemUuid: sys.UUID.toLowerCase(), serial: sys.SerialNumber } });
    expect(e.machine.identity.macs.length).toBeGreaterThan(0);
    const again = (await t.api('POST', '/api/v1/appliances/bmc-1/enlist', {})).json().items;
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ outcome: 'matched', machine: { id: e.machine.id } });
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(1);
    expect((await t.api('DELETE', '/api/v1/appliances/bmc-1')).statusCode).toBe(409);
  });

  it('inspection sets the next boot to the network and powers the machine on through the appliance', async () => {
    const m = (await t.api('GET', '/api/v1/machines')).json().items[0];
    const before = peer.resets.length;
    const r = await t.api('POST', `/api/v1/machines/${m.name}/actions/inspect`, {});
    expect(r.statusCode).toBe(200);
    for (let i = 0; i < 600 && peer.resets.length === before; i++) await new Promise((x) => setTimeout(x, 100));
    // The one-time override was armed before the power-on, and that boot used it.
    expect(peer.resets.slice(before)).toEqual(['On']);
    expect(powerChanges.at(-1)).toEqual({ state: 'On', bootTarget: 'Pxe' });
    // The BMC saw the reset before the job's result is recorded: wait for the record, not the clock.
    let after = (await t.api('GET', `/api/v1/machines/${m.name}`)).json();
    for (let i = 0; i < 600 && after.power.state !== 'on'; i++) {
      await new Promise((x) => setTimeout(x, 100));
      after = (await t.api('GET', `/api/v1/machines/${m.name}`)).json();
    }
    expect(after.power).toMatchObject({ state: 'on', source: 'redfish', expected: 'on', drift: false });
  });

  it('powers off and reads power through the API, recording who asked', async () => {
    const m = (await t.api('GET', '/api/v1/machines')).json().items[0];
    const off = await t.api('POST', `/api/v1/machines/${m.name}/power`, { action: 'off' });
    expect(off.statusCode, off.body).toBe(200);
    expect((peer.system() as { PowerState: string }).PowerState).toBe('Off');
    expect(off.json().machine.power.state).toBe('off');
    const status = await t.api('GET', `/api/v1/machines/${m.name}/power`);
    expect(status.json()).toMatchObject({ job: { status: 'succeeded', result: { power: 'off' } }, machine: { power: { state: 'off', drift: true } } });
    const events = (await t.api('GET', `/api/v1/machines/${m.name}/events`)).json().items.map((e: any) => [e.actor, e.action]);
    expect(events).toContainEqual(['operator:admin', 'power-off']);
    expect(events).toContainEqual(['system:power', 'power-drift']);
    const bad = await t.api('POST', `/api/v1/machines/${m.name}/power`, { action: 'explode' });
    expect(bad.statusCode).toBe(400);
  });

  it('syncs power states and flags drift from what the lifecycle expects', async () => {
    const m = (await t.api('GET', '/api/v1/machines')).json().items[0];
    await t.api('POST', `/api/v1/machines/${m.name}/actions/abort`, {});
    // abort → inspect-failed: the lifecycle powers the machine off and now expects off.
    await new Promise((x) => setTimeout(x, 500));
    await t.controller.power.syncOnce();
    for (let i = 0; i < 50; i++) {
      const cur = (await t.api('GET', `/api/v1/machines/${m.name}`)).json();
      if (cur.power.readAt && cur.power.state === 'off' && cur.power.expected === 'off') break;
      await new Promise((x) => setTimeout(x, 100));
    }
    const cur = (await t.api('GET', `/api/v1/machines/${m.name}`)).json();
    expect(cur.power).toMatchObject({ state: 'off', expected: 'off', drift: false });
  });

  it('fails the operation with lastError "boot-device" when the appliance cannot be reached', async () => {
    await t.api('POST', '/api/v1/appliances', { name: 'dead-bmc', type: 'redfish', address: 'https://127.0.0.1:9', username: 'root', password: 'x' });
    await t.api('POST', '/api/v1/machines', { name: 'orphan-1', provider: { applianceId: (await t.api('GET', '/api/v1/appliances/dead-bmc')).json().id, ref: '/redfish/v1/Systems/1' } });
    await t.api('POST', '/api/v1/machines/orphan-1/actions/inspect', {});
    let m: any;
    for (let i = 0; i < 200; i++) {
      m = (await t.api('GET', '/api/v1/machines/orphan-1')).json();
      if (m.state === 'inspect-failed') break;
      await new Promise((x) => setTimeout(x, 100));
    }
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'boot-device', stage: 'boot-device' });
    expect(m.lastError.message).toMatch(/^redfish: /);
  });
});

/** A controller with a 2 s job lease whose machines can boot a (placeholder) installer. */
async function leasingController(db: Parameters<typeof startController>[0]) {
  const files = mkdtempSync(join(tmpdir(), 'plinth-takeover-'));
  writeFileSync(join(files, 'vmlinuz'), 'kernel');
  writeFileSync(join(files, 'initrd.img'), 'initrd');
  return startController(
    db,
    { publicUrl: 'http://10.0.2.2:7708', providers: { lease: '2s', jobDeadline: '60s' } },
    { installer: () => ({ kernel: join(files, 'vmlinuz'), initrd: join(files, 'initrd.img') }) },
  );
}

/** The ticket in the boot script the controller hands a machine booting from the network. */
async function bootTicket(a: TC | Awaited<ReturnType<typeof startController>>, mac: string): Promise<string | undefined> {
  return /plinth\.token=(\S+)/.exec((await a.api('GET', `/boot/machine.ipxe?mac=${mac}`, undefined, null)).body)?.[1];
}

/**
 * After a network boot job was taken over: waits for it to finish, then checks the machine was
 * not reset again when the agent had claimed its run, else reset once with the run re-armed.
 */
async function expectTakenOver(a: Awaited<ReturnType<typeof startController>>, peer: RedfishPeer, o: { jobId: string; machine: string; mac: string; ticket: string | undefined; agentClaimed: boolean }) {
  const store = a.controller.services.store;
  const done = async () => store.db.selectFrom('provider_jobs').selectAll().where('id', '=', o.jobId).executeTakeFirstOrThrow();
  for (let i = 0; i < 600 && (await done()).status !== 'succeeded'; i++) await new Promise((x) => setTimeout(x, 100));
  const job = await done();
  expect([job.status, Number(job.attempts)]).toEqual(['succeeded', 2]);
  if (o.agentClaimed) {
    // The agent keeps its run: nothing reset the machine under it, and its next report is taken.
    expect(peer.resets).toEqual([]);
    expect((await a.api('POST', '/agent/v1/hello', { agentVersion: 'test' }, o.ticket)).statusCode).toBe(200);
  } else {
    // The machine was reset again: the boot that follows gets the run; a ticket from before the reset is dead.
    expect(peer.resets).toEqual(['On']);
    expect((await a.api('POST', '/agent/v1/hello', { agentVersion: 'test' }, o.ticket)).statusCode).toBe(401);
    expect((await a.api('POST', '/agent/v1/hello', { agentVersion: 'test' }, await bootTicket(a, o.mac))).statusCode).toBe(200);
  }
  expect((await a.api('GET', `/api/v1/machines/${o.machine}`)).json().state).toBe('inspect-wait');
  return job;
}

describe('provider jobs across restarts and remote sites', () => {
  const backend = backends[backends.length - 1]!;

  it('runs a job queued before a controller restart exactly once', async () => {
    const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off' });
    const db = await backend.create();
    try {
      const a = await startController(db);
      await a.api('POST', '/api/v1/appliances', { name: 'r1', type: 'redfish', address: peer.url, username: 'u', password: 'p' });
      await a.api('POST', '/api/v1/appliances/r1/enlist', { waitSeconds: 1 }).catch(() => undefined);
      const m = await a.api('POST', '/api/v1/machines', { name: 'restart-1', provider: { applianceId: (await a.api('GET', '/api/v1/appliances/r1')).json().id, ref: peer.systemPath } });
      expect(m.statusCode).toBe(201);
      await a.api('POST', '/api/v1/machines/restart-1/actions/inspect', {});
      const queued = await a.controller.services.store.db.selectFrom('provider_jobs').select(['id', 'status']).where('machine_id', '=', m.json().id).execute();
      expect(queued.map((j) => j.status)).toEqual(['queued']);
      await a.close();
      expect(peer.resets).toEqual([]);
      const b = await startController(db);
      b.controller.power.start();
      for (let i = 0; i < 100 && peer.resets.length === 0; i++) await new Promise((x) => setTimeout(x, 100));
      await new Promise((x) => setTimeout(x, 1000));
      expect(peer.resets).toEqual(['On']);
      const job = await b.controller.services.store.db.selectFrom('provider_jobs').selectAll().where('id', '=', queued[0]!.id).executeTakeFirstOrThrow();
      expect(job.status).toBe('succeeded');
      expect(Number(job.attempts)).toBe(1);
      await b.close();
    } finally {
      await db.drop();
      await peer.close();
    }
  });

  it.each([
    ['claimed the run', true],
    ['not yet claimed it', false],
  ])('takes over a network boot whose runner vanished: no second reset when the agent %s, else a reset that re-arms the run', async (_label, agentClaimed) => {
    const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off' });
    const db = await backend.create();
    try {
      const a = await leasingController(db);
      const appliance = (await a.api('POST', '/api/v1/appliances', { name: 'r1', type: 'redfish', address: peer.url, username: 'u', password: 'p' })).json();
      const mac = '52:54:00:7a:00:01';
      const m = await a.api('POST', '/api/v1/machines', { name: 'taken-1', identity: { macs: [mac] }, provider: { applianceId: appliance.id, ref: peer.systemPath } });
      expect(m.statusCode, m.body).toBe(201);
      await a.api('POST', '/api/v1/machines/taken-1/actions/inspect', {});
      const store = a.controller.services.store;
      // A runner that vanished: it claimed the job (and, for all anyone knows, reset the machine) and never finished it.
      const [held] = await claimJobs(store, { site: null, claimer: 'controller:gone', limit: 1, leaseMs: 1, now: new Date() });
      expect(held?.spec).toMatchObject({ kind: 'boot', device: 'pxe' });
      // The machine booted from that reset: its script carries a run ticket.
      const ticket = await bootTicket(a, mac);
      expect(ticket).toBeTruthy();
      if (agentClaimed) expect((await a.api('POST', '/agent/v1/hello', { agentVersion: 'test' }, ticket)).statusCode).toBe(200);

      a.controller.power.start();
      const job = await expectTakenOver(a, peer, { jobId: held!.id, machine: 'taken-1', mac, ticket, agentClaimed });
      expect(job.claimed_by).not.toBe('controller:gone');
      await a.close();
    } finally {
      await db.drop();
      await peer.close();
    }
  });

  it.each(backends.flatMap((b) => [[b.name, 'claimed the run', true, b], [b.name, 'not yet claimed it', false, b]] as const))(
    'on %s, a site\'s network boot whose manager vanished, taken over by the next claim: no second reset when the agent %s, else a reset that re-arms the run',
    async (_db, _label, agentClaimed, backend) => {
      const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off' });
      const db = await backend.create();
      const a = await leasingController(db);
      let manager: Manager | null = null;
      let running: Promise<void> | null = null;
      try {
        const appliance = (await a.api('POST', '/api/v1/appliances', { name: 'dc3-bmc', type: 'redfish', address: peer.url, username: 'u', password: 'p', site: 'dc3' })).json();
        const mac = '52:54:00:7a:00:03';
        expect((await a.api('POST', '/api/v1/machines', { name: 'dc3-01', identity: { macs: [mac] }, provider: { applianceId: appliance.id, ref: peer.systemPath } })).statusCode).toBe(201);
        await a.api('POST', '/api/v1/machines/dc3-01/actions/inspect', {});
        const store = a.controller.services.store;
        // The site's manager claimed the job (and, for all anyone knows, reset the machine), then died.
        const [held] = await claimJobs(store, { site: 'dc3', claimer: 'manager:dc3', limit: 1, leaseMs: 1, now: new Date() });
        expect(held?.spec).toMatchObject({ kind: 'boot', device: 'pxe' });
        const ticket = await bootTicket(a, mac);
        expect(ticket).toBeTruthy();
        if (agentClaimed) expect((await a.api('POST', '/agent/v1/hello', { agentVersion: 'test' }, ticket)).statusCode).toBe(200);

        // The site's next manager claims it once the lease is over (the power loop expires leases).
        a.controller.power.start();
        const url = await a.controller.listen();
        manager = new Manager({ url, token: a.adminToken, site: 'dc3', parallel: 4, registry: defaultRegistry(), log: createLogger('silent'), version: 'test', providerTimeoutMs: 5000 });
        running = manager.run();
        const job = await expectTakenOver(a, peer, { jobId: held!.id, machine: 'dc3-01', mac, ticket, agentClaimed });
        expect(job.claimed_by).toBe('manager:dc3');
      } finally {
        manager?.stop();
        await running;
        await a.close();
        await db.drop();
        await peer.close();
      }
    },
    90_000,
  );

  it('hands a remote site\'s jobs to its manager, and fails them clearly when the manager is gone', async () => {
    const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off' });
    const db = await backend.create();
    const t = await startController(db, { providers: { jobDeadline: '4s', lease: '2s' } });
    const url = await t.controller.listen();
    t.controller.power.start();
    const manager = new Manager({ url, token: t.adminToken, site: 'edge', parallel: 4, registry: defaultRegistry(), log: createLogger('silent'), version: 'test', providerTimeoutMs: 5000 });
    const running = manager.run();
    try {
      await t.api('POST', '/api/v1/appliances', { name: 'edge-bmc', type: 'redfish', address: peer.url, username: 'u', password: 'p', site: 'edge' });
      const e = await t.api('POST', '/api/v1/appliances/edge-bmc/enlist', { waitSeconds: 30 });
      expect(e.statusCode, e.body).toBe(200);
      const name = e.json().items[0].machine.name;
      const on = await t.api('POST', `/api/v1/machines/${name}/power`, { action: 'on', waitSeconds: 30 });
      expect(on.statusCode, on.body).toBe(200);
      expect((peer.system() as { PowerState: string }).PowerState).toBe('On');
      expect((await t.api('GET', '/api/v1/managers')).json().items).toMatchObject([{ site: 'edge', version: 'test' }]);
      // The local runner never touches the site's jobs.
      const jobs = await t.controller.services.store.db.selectFrom('provider_jobs').select(['claimed_by']).execute();
      expect(jobs.every((j) => j.claimed_by === 'manager:edge')).toBe(true);

      manager.stop();
      await running;
      const off = await t.api('POST', `/api/v1/machines/${name}/power`, { action: 'off', waitSeconds: 30 });
      // The job's deadline (4 s) passes with nobody to run it: the request fails clearly, not hangs.
      expect(off.statusCode).toBe(502);
      expect(off.json().error.message).toMatch(/^power off failed: power job not done by its deadline: the manager of site edge was last seen 20\d\d-/);
      const job = (await t.api('GET', `/api/v1/jobs/${off.json().error.details.job}`)).json();
      expect(job).toMatchObject({ status: 'failed', site: 'edge', error: { failure: 'timeout' } });
    } finally {
      manager.stop();
      await running;
      await t.close();
      await db.drop();
      await peer.close();
    }
  }, 90_000);
});

describe.each(backends)('the provider-job loop on $name', (backend) => {
  it('is woken by a transition that queued a job, not by one that queued none', async () => {
    // The loop is not started: nothing but a transition's commit calls wake.
    const t = await freshController(backend);
    try {
      const wake = vi.spyOn(t.controller.power, 'wake');
      await t.api('POST', '/api/v1/appliances', { name: 'bmc-w', type: 'redfish', address: 'http://127.0.0.1:9', username: 'root', password: 'calvin' });
      const a = (await t.api('GET', '/api/v1/appliances/bmc-w')).json();
      expect((await t.api('POST', '/api/v1/machines', { name: 'loose-1', identity: { macs: ['52:54:00:aa:00:01'] } })).statusCode).toBe(201);
      expect((await t.api('POST', '/api/v1/machines', { name: 'racked-1', provider: { applianceId: a.id, ref: '/redfish/v1/Systems/1' } })).statusCode).toBe(201);
      // No appliance: the inspection queues no job, and the loop is left asleep.
      expect((await t.api('POST', '/api/v1/machines/loose-1/actions/inspect', {})).statusCode).toBe(200);
      expect(wake).not.toHaveBeenCalled();
      // Its appliance powers it: the job is queued and the loop woken once, when the transition commits.
      expect((await t.api('POST', '/api/v1/machines/racked-1/actions/inspect', {})).statusCode).toBe(200);
      expect(wake).toHaveBeenCalledTimes(1);
      const jobs = await t.controller.services.store.db.selectFrom('provider_jobs').select(['status']).execute();
      expect(jobs).toEqual([{ status: 'queued' }]);
    } finally {
      await t.close();
    }
  });
});

describe('manual appliances and managers that vanish mid-job', () => {
  const backend = backends[0]!;

  it('asks the operator to power a manual machine on, and waits instead of failing it', async () => {
    const t = await freshController(backend);
    t.controller.power.start();
    try {
      await t.api('POST', '/api/v1/appliances', { name: 'by-hand', type: 'manual', address: 'rack 4' });
      const a = (await t.api('GET', '/api/v1/appliances/by-hand')).json();
      await t.api('POST', '/api/v1/machines', { name: 'rack4-07', provider: { applianceId: a.id, ref: 'rack4-07' } });
      await t.api('POST', '/api/v1/machines/rack4-07/actions/inspect', {});
      await new Promise((r) => setTimeout(r, 1000));
      const m = (await t.api('GET', '/api/v1/machines/rack4-07')).json();
      expect(m.state).toBe('inspecting');
      const ev = (await t.api('GET', '/api/v1/machines/rack4-07/events')).json().items.at(-1);
      expect(ev).toMatchObject({ actor: 'system:power', action: 'operator-action-required', reason: 'power on machine rack4-07 and make it boot from the network (PXE)' });
      expect(await t.controller.services.store.db.selectFrom('provider_jobs').selectAll().execute()).toEqual([]);
      const p = await t.api('POST', '/api/v1/machines/rack4-07/power', { action: 'on' });
      expect(p.statusCode).toBe(422);
      expect(p.json().error.message).toBe('power on failed: manual: no power control: power on machine rack4-07');
    } finally {
      await t.close();
    }
  });

  it('hands a job claimed by a manager that died to the next manager once its lease ends', async () => {
    const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off' });
    const db = await backend.create();
    const t = await startController(db, { providers: { lease: '2s', jobDeadline: '60s' } });
    const url = await t.controller.listen();
    t.controller.power.start();
    try {
      await t.api('POST', '/api/v1/appliances', { name: 'site-bmc', type: 'redfish', address: peer.url, username: 'u', password: 'p', site: 'dc2' });
      const a = (await t.api('GET', '/api/v1/appliances/site-bmc')).json();
      await t.api('POST', '/api/v1/machines', { name: 'dc2-01', provider: { applianceId: a.id, ref: peer.systemPath } });
      const pending = t.api('POST', '/api/v1/machines/dc2-01/power', { action: 'on', waitSeconds: 60 });
      // A manager claims the job and dies without a word.
      await new Promise((r) => setTimeout(r, 300));
      const claimed = await t.api('POST', '/api/v1/managers/dc2/claim', { version: 'dead', max: 10, waitSeconds: 5 });
      expect(claimed.json().jobs).toHaveLength(1);
      expect(peer.resets).toEqual([]);
      // A new manager starts; after the lease it gets the job again and runs it.
      const manager = new Manager({ url, token: t.adminToken, site: 'dc2', parallel: 2, registry: defaultRegistry(), log: createLogger('silent'), version: 'new', providerTimeoutMs: 5000 });
      const running = manager.run();
      const r = await pending;
      manager.stop();
      await running;
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().job).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(peer.resets).toEqual(['On']);
    } finally {
      await t.close();
      await db.drop();
      await peer.close();
    }
  }, 90_000);
});

describe('a provider job slower than its lease', () => {
  const backend = backends[0]!;

  it('is renewed while it runs: run once, not handed out again', async () => {
    // The BMC takes ~5 s to show the machine on (10 reads at the verifier's 500 ms), over twice the 2 s lease.
    const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'Off', transitionReads: 10 });
    const db = await backend.create();
    const t = await startController(db, { providers: { lease: '2s', jobDeadline: '60s' } });
    t.controller.power.start();
    try {
      await t.api('POST', '/api/v1/appliances', { name: 'slow-bmc', type: 'redfish', address: peer.url, username: 'u', password: 'p' });
      const a = (await t.api('GET', '/api/v1/appliances/slow-bmc')).json();
      await t.api('POST', '/api/v1/machines', { name: 'slow-01', provider: { applianceId: a.id, ref: peer.systemPath } });
      const r = await t.api('POST', '/api/v1/machines/slow-01/power', { action: 'on', waitSeconds: 60 });
      expect(r.statusCode, r.body).toBe(200);
      // Claimed once and reset once: the housekeeping that hands out expired leases never took it back.
      expect(r.json().job).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(peer.resets).toEqual(['On']);
      const job = (await t.api('GET', `/api/v1/jobs/${r.json().job.id}`)).json();
      expect(Date.parse(job.finishedAt) - Date.parse(job.createdAt)).toBeGreaterThan(2000);
    } finally {
      await t.close();
      await db.drop();
      await peer.close();
    }
  }, 90_000);
});

/**
 * A sync reads every machine of an appliance; a power action of one of them can land between
 * the sync's read and its report. That reading is older than the action's verified one.
 */
describe.each(backends)('a sync that lands inside a power transition on $name', (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  // Each step a second apart, so that "after" is never "in the same millisecond".
  const clock = new FakeClock();
  beforeAll(async () => {
    peer = await startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'On' });
    t = await freshController(backend, {}, { clock });
  });
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  it('neither overwrites the state the action read nor reports drift', async () => {
    const { store } = t.controller.services;
    const power = t.controller.power;
    expect((await t.api('POST', '/api/v1/appliances', { name: 'sync-bmc', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' })).statusCode).toBe(201);
    const applianceId = (await t.api('GET', '/api/v1/appliances/sync-bmc')).json().id;
    const created = await t.api('POST', '/api/v1/machines', { name: 'moving-1', provider: { applianceId, ref: peer.systemPath } });
    expect(created.statusCode, created.body).toBe(201);
    const machineId = created.json().id;
    const now = (): Date => (clock.advance(1000), clock.now());

    // The sync is claimed and reads the machine on; meanwhile the machine is to be switched
    // off (the lifecycle queues the job and expects off in one transaction), and the sync reports.
    expect(await power.syncOnce()).toBe(1);
    const [sync] = await claimJobs(store, { site: null, claimer: 'reader', limit: 1, leaseMs: 60_000, now: now() });
    expect(sync?.spec.kind).toBe('sync');
    clock.advance(1000);
    const off = await power.enqueueForMachine('moving-1', (m) => ({ kind: 'power', ref: m.provider.ref!, target: 'off' }));
    await store.db.updateTable('machines').set({ power_expected: 'off' }).where('id', '=', machineId).execute();
    expect(await power.complete(sync!.id, 'reader', { status: 'succeeded', result: { states: { [peer.systemPath]: 'on' } } })).toBe(true);
    const driftEvents = async (): Promise<number> =>
      (await store.db.selectFrom('events').select('action').where('machine_id', '=', machineId).execute()).filter((e) => e.action === 'power-drift').length;
    expect(await driftEvents()).toBe(0);
    expect((await t.api('GET', '/api/v1/machines/moving-1')).json().power.drift).toBe(false);

    // The power-off runs and reads the machine off.
    const [claimedOff] = await claimJobs(store, { site: null, claimer: 'actor', limit: 1, leaseMs: 60_000, now: now() });
    expect(claimedOff?.id).toBe(off.id);
    clock.advance(1000);
    expect(await power.complete(off.id, 'actor', { status: 'succeeded', result: { power: 'off' } })).toBe(true);
    expect((await t.api('GET', '/api/v1/machines/moving-1')).json().power).toMatchObject({ state: 'off', expected: 'off', drift: false });
    expect(await driftEvents()).toBe(0);

    // A sync queued after the action reads the machine again, and a real drift is reported.
    clock.advance(1000);
    expect(await power.syncOnce()).toBe(1);
    const [next] = await claimJobs(store, { site: null, claimer: 'reader', limit: 1, leaseMs: 60_000, now: now() });
    expect(await power.complete(next!.id, 'reader', { status: 'succeeded', result: { states: { [peer.systemPath]: 'on' } } })).toBe(true);
    expect((await t.api('GET', '/api/v1/machines/moving-1')).json().power).toMatchObject({ state: 'on', expected: 'off', drift: true });
    expect(await driftEvents()).toBe(1);
  });
});
