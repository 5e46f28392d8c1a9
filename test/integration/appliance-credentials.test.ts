/**
 * A BMC password rotated behind Plinth's back, against the test Redfish service: the power
 * sync reads `auth` once (one failed login, one event) and then leaves the appliance alone;
 * `plinth appliance update --password-file` brings it back on the next read. Then machines
 * move to a replacement appliance, the emptied one is deleted and its name registered again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { startIpmiSim, type IpmiSimPeer } from '../support/peers/ipmi-sim.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/** Waits until no provider job of the controller is queued or running. */
async function settle(t: TC): Promise<void> {
  const db = t.controller.services.store.db;
  for (;;) {
    const pending = await db.selectFrom('provider_jobs').select('id').where('status', 'in', ['queued', 'running']).execute();
    if (pending.length === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(backends)('appliance credentials, health and moves on $name', (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  let other: RedfishPeer;
  let run: ReturnType<typeof inProcessCli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-appl-'));

  beforeAll(async () => {
    [peer, other] = await Promise.all([startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'On' }), startRedfishPeer()]);
    t = await freshController(backend, { providers: { jobDeadline: '20s', timeout: '5s', syncInterval: '0s' } });
    t.controller.power.start();
    const url = await t.controller.listen();
    run = inProcessCli({ PLINTH_URL: url, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-a', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' })).statusCode).toBe(201);
    const applianceId = (await t.api('GET', '/api/v1/appliances/bmc-a')).json().id;
    for (const [name, ref] of [
      ['rack-1', peer.systemPath],
      ['rack-2', '/redfish/v1/Systems/absent'],
    ]) {
      const r = await t.api('POST', '/api/v1/machines', { name, provider: { applianceId, ref } });
      expect(r.statusCode, r.body).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([peer?.close(), other?.close()]);
  });

  const sync = async (): Promise<number> => {
    const queued = await t.controller.power.syncOnce();
    await settle(t);
    return queued;
  };
  const appliance = async (name = 'bmc-a') => (await t.api('GET', `/api/v1/appliances/${name}`)).json();
  const events = async (name = 'bmc-a') => (await t.api('GET', `/api/v1/appliances/${name}/events`)).json().items as Array<{ action: string; reason: string; details: Record<string, unknown> }>;

  it('reads ok, then auth once after the password is rotated on the BMC, with one event and one failed login', async () => {
    expect(await sync()).toBe(1);
    expect((await t.api('GET', '/api/v1/machines/rack-1')).json().power.state).toBe('on');

    peer.setPassword('rotated-pw');
    const before = peer.failedLogins;
    expect(await sync()).toBe(1);
    // Both machines sit behind the BMC, but the sync stopped at the first refused login.
    expect(peer.failedLogins - before).toBe(1);
    // While the credentials are refused the sync leaves the BMC alone: no more failed logins, no more events.
    expect(await sync()).toBe(0);
    expect(await sync()).toBe(0);
    expect(peer.failedLogins - before).toBe(1);

    const a = await appliance();
    expect(a.health).toBe('auth');
    expect(a.healthError).toMatch(/^redfish: /);
    expect(a.healthError).not.toContain('calvin');
    expect((await events()).map((e) => [e.action, e.details])).toEqual([
      ['appliance-health', { from: 'unknown', to: 'ok' }],
      ['appliance-health', { from: 'ok', to: 'auth' }],
    ]);

    const list = await run('appliance', 'list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^bmc-a redfish .* auth redfish: /m);
    const show = await run('appliance', 'show', 'bmc-a');
    expect(show.stdout).toMatch(/^health:\s+auth since /m);
    expect(show.stdout).toMatch(/^error:\s+redfish: /m);
  });

  it('a check probes the BMC now and records what it says', async () => {
    const before = peer.failedLogins;
    const r = await run('appliance', 'check', 'bmc-a');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bmc-a: auth \(redfish: /);
    expect(peer.failedLogins - before).toBe(1);
    expect((await events()).length).toBe(2);
  });

  it('update --password-file: the next read uses the new password, health ok, events say so', async () => {
    const bad = await run('appliance', 'update', 'bmc-a', '--password-file', join(dir, 'missing'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^plinth: --password-file: cannot read .*missing \(ENOENT\)\n$/);
    const nothing = await run('appliance', 'update', 'bmc-a');
    expect(nothing.code).not.toBe(0);
    expect(nothing.stderr.trim().split('\n')).toHaveLength(1);

    const file = join(dir, 'pw');
    writeFileSync(file, 'rotated-pw\n', { mode: 0o600 });
    const u = await run('appliance', 'update', 'bmc-a', '--password-file', file);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/^updated bmc-a \(password\); health unknown/);
    const a = await appliance();
    expect(a).toMatchObject({ health: 'unknown', hasPassword: true });
    expect(JSON.stringify(a)).not.toContain('rotated-pw');
    const row = await t.controller.services.store.db.selectFrom('appliances').select('password_enc').where('name', '=', 'bmc-a').executeTakeFirstOrThrow();
    expect(row.password_enc).not.toContain('rotated-pw');

    const before = peer.failedLogins;
    expect(await sync()).toBe(1);
    expect(await appliance()).toMatchObject({ health: 'ok', healthError: null });
    expect(peer.failedLogins).toBe(before);
    expect((await t.api('GET', '/api/v1/machines/rack-1')).json().power.state).toBe('on');
    const ev = await events();
    expect(ev.map((e) => e.action)).toEqual(['appliance-health', 'appliance-health', 'appliance-updated', 'appliance-health']);
    expect(ev[2]!.details).toMatchObject({ fields: ['password'] });
    expect(JSON.stringify(ev)).not.toContain('rotated-pw');
  });

  it('PATCH validates like register, naming the field', async () => {
    const r = await t.api('PATCH', '/api/v1/appliances/bmc-a', { address: 'not a url' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/^address: /);
    const ca = await t.api('PATCH', '/api/v1/appliances/bmc-a', { caCert: 'junk' });
    expect(ca.statusCode).toBe(400);
    expect(ca.json().error.message).toMatch(/^caCert: /);
    const name = await t.api('PATCH', '/api/v1/appliances/bmc-a', { name: 'renamed' });
    expect(name.statusCode).toBe(400);
    expect((await t.api('PATCH', '/api/v1/appliances/nope', { username: 'x' })).statusCode).toBe(404);
    const empty = await t.api('PATCH', '/api/v1/appliances/bmc-a', {});
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.message).toMatch(/^body: nothing to change/);
    // A check needs no body.
    const check = await t.api('POST', '/api/v1/appliances/bmc-a/check');
    expect(check.statusCode, check.body).toBe(200);
    expect(check.json()).toMatchObject({ appliance: { name: 'bmc-a', health: 'ok' }, job: { status: 'succeeded' } });
  });

  it('moves machines to a replacement appliance; the emptied one is deleted and its name registered again', async () => {
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-b', type: 'redfish', address: peer.url, username: 'root', password: 'rotated-pw' })).statusCode).toBe(201);
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-elsewhere', type: 'redfish', address: other.url, username: 'admin', password: 'password' })).statusCode).toBe(201);

    const refused = await t.api('DELETE', '/api/v1/appliances/bmc-a');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/plinth appliance move/);

    // A reference must stay on the new appliance's endpoint.
    const foreign = await run('appliance', 'move', '--from', 'bmc-a', '--to', 'bmc-b', 'rack-2', '--ref', `${other.url}/redfish/v1/Systems/1`);
    expect(foreign.code).not.toBe(0);
    expect(foreign.stderr).toMatch(/^plinth: provider\.ref: machine rack-2: .* is not on the appliance's endpoint/);
    const notHere = await run('appliance', 'move', '--from', 'bmc-a', '--to', 'bmc-b', 'nope');
    expect(notHere.code).not.toBe(0);
    expect(notHere.stderr).toBe('plinth: machines: nope: not a machine of bmc-a\n');
    const noTarget = await t.api('POST', '/api/v1/appliances/bmc-a/move', { to: 'nope' });
    expect(noTarget.statusCode).toBe(400);
    expect(noTarget.json().error.message).toMatch(/^to: /);

    // One machine, then all the others.
    const one = await run('appliance', 'move', '--from', 'bmc-a', '--to', 'bmc-elsewhere', 'rack-2', '--ref', other.systemPath);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe('moved 1 machine(s) from bmc-a to bmc-elsewhere: rack-2\n');
    const all = await run('appliance', 'move', '--from', 'bmc-a', '--to', 'bmc-b');
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe('moved 1 machine(s) from bmc-a to bmc-b: rack-1\n');
    const bId = (await appliance('bmc-b')).id;
    expect((await t.api('GET', '/api/v1/machines/rack-1')).json().provider).toMatchObject({ applianceId: bId, ref: peer.systemPath });
    const machineEvents = (await t.api('GET', '/api/v1/machines/rack-1/events')).json().items;
    expect(machineEvents.at(-1)).toMatchObject({ action: 'appliance-moved', reason: 'from bmc-a to bmc-b' });

    // The moved machine is read through its new appliance.
    expect(await sync()).toBeGreaterThanOrEqual(1);
    expect((await t.api('GET', '/api/v1/machines/rack-1')).json().power.state).toBe('on');
    expect((await appliance('bmc-b')).health).toBe('ok');

    const del = await run('appliance', 'delete', 'bmc-a');
    expect(del.code, del.stderr).toBe(0);
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-a', type: 'redfish', address: peer.url, username: 'root', password: 'rotated-pw' })).statusCode).toBe(201);
    expect(await appliance()).toMatchObject({ health: 'unknown' });
    expect(await events()).toEqual([]);
  });
});

describe.each(backends)('an IPMI BMC that refuses the password on $name', (backend) => {
  let t: TC;
  let bmc: IpmiSimPeer;
  beforeAll(async () => {
    bmc = await startIpmiSim({ powerOn: true });
    t = await freshController(backend, { providers: { jobDeadline: '30s', timeout: '10s', syncInterval: '0s' } });
    t.controller.power.start();
    const r = await t.api('POST', '/api/v1/appliances', { name: 'ipmi-1', type: 'ipmi', address: bmc.address, username: bmc.username, password: 'not-the-password' });
    expect(r.statusCode, r.body).toBe(201);
    expect((await t.api('POST', '/api/v1/machines', { name: 'ipmi-node', provider: { applianceId: r.json().id, ref: 'bmc' } })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await bmc?.close();
  });
  const sync = async (): Promise<number> => {
    const queued = await t.controller.power.syncOnce();
    await settle(t);
    return queued;
  };

  it('reads auth, is left out of the sync, and reads ok once its password is updated', async () => {
    expect(await sync()).toBe(1);
    const a = (await t.api('GET', '/api/v1/appliances/ipmi-1')).json();
    expect(a.health).toBe('auth');
    expect(a.healthError).toMatch(/refused the user name or password/);
    expect(a.healthError).not.toContain('not-the-password');
    expect(await sync()).toBe(0);

    const u = await t.api('PATCH', '/api/v1/appliances/ipmi-1', { password: bmc.password });
    expect(u.statusCode, u.body).toBe(200);
    expect(await sync()).toBe(1);
    expect((await t.api('GET', '/api/v1/appliances/ipmi-1')).json()).toMatchObject({ health: 'ok', healthError: null });
    expect((await t.api('GET', '/api/v1/machines/ipmi-node')).json().power.state).toBe('on');
    const ev = (await t.api('GET', '/api/v1/appliances/ipmi-1/events')).json().items;
    expect(ev.map((e: { action: string; details: unknown }) => [e.action, e.details])).toEqual([
      ['appliance-health', { from: 'unknown', to: 'auth' }],
      ['appliance-updated', { fields: ['password'], from: 'auth', to: 'unknown' }],
      ['appliance-health', { from: 'unknown', to: 'ok' }],
    ]);
  });
});

describe.each(backends)('moving machines while their jobs wait, on $name', (backend) => {
  let t: TC;
  beforeAll(async () => {
    // No job runner: queued jobs stay queued.
    t = await freshController(backend, { providers: { syncInterval: '0s' } });
    for (const name of ['old-bmc', 'new-bmc']) {
      expect((await t.api('POST', '/api/v1/appliances', { name, type: 'redfish', address: 'https://10.0.0.7', username: 'root', password: 'calvin' })).statusCode).toBe(201);
    }
    const applianceId = (await t.api('GET', '/api/v1/appliances/old-bmc')).json().id;
    expect((await t.api('POST', '/api/v1/machines', { name: 'waiting', provider: { applianceId, ref: '/redfish/v1/Systems/1' } })).statusCode).toBe(201);
  });
  afterAll(async () => t?.close());

  it('refuses to move a machine whose job is still queued, and a site change takes queued jobs along', async () => {
    const job = await t.controller.power.enqueueForMachine('waiting', (m) => ({ kind: 'status', ref: m.provider.ref! }));
    const r = await t.api('POST', '/api/v1/appliances/old-bmc/move', { to: 'new-bmc' });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.message).toBe('a power or boot job of waiting is still under way on old-bmc; move once it is done');
    expect((await t.api('GET', '/api/v1/machines/waiting')).json().provider.applianceId).toBe((await t.api('GET', '/api/v1/appliances/old-bmc')).json().id);

    expect((await t.api('PATCH', '/api/v1/appliances/old-bmc', { site: 'dc2' })).statusCode).toBe(200);
    expect((await t.controller.power.job(job.id)).site).toBe('dc2');
  });
});
