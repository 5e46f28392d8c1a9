/**
 * Tateru's Machine Service API at /v1 (protocol/tateru.ts) over Plinth's holds: machines found
 * by alias and by UUID, boot-installer with and without a nonce (the same nonce is the same
 * operation; another operation in flight is 409), the installer's callback with its run
 * ticket, bad input refused naming the field; and HTTP Basic auth (the API token as password)
 * accepted on the whole API next to Bearer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, placeholderInstaller, snapshot } from '../support/controller.js';
import { availableMachine, installerUp, INSTALLER_HOST_KEY, type HeldMachineIdentity } from '../support/held-installer.js';
import { injectHttp } from './matching-support.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx automation@test';
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG90aGVya2V5Zm9ydGhlaW5zdGFsbGVyaG9sZDI other@test';
const API_URL = 'https://plinth.example.net:7708';
const A: HeldMachineIdentity = { index: 1401, uuid: '4C4C4544-0039-4B10-8050-B9C04F505714', assetTag: 'AT-1401' };
const B: HeldMachineIdentity = { index: 1402, uuid: '1e7f7a9c-2a51-4c55-9d2e-6c0d3f1b1402' };
const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

describe.each(backends)("Tateru's /v1 API and Basic auth on $name", (backend) => {
  let t: TC;
  let a: { name: string; id: string };
  let bName: string;
  let reader: string;
  let operator: string;

  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708', apiUrl: API_URL }, { installer: placeholderInstaller('plinth-tateru-') });
    const http = injectHttp(t.controller.app);
    await availableMachine(http, A);
    await availableMachine(http, B);
    const all = (await t.api('GET', '/api/v1/machines')).json().items as any[];
    const ma = all.find((m) => m.identity.serial === 'CZ00001401');
    a = { name: ma.name, id: ma.id };
    bName = all.find((m) => m.identity.serial === 'CZ00001402').name;
    expect(ma.state).toBe('available');
    // Without a system UUID a machine is known to Tateru by its Plinth id.
    expect((await t.api('POST', '/api/v1/machines', { name: 'no-uuid', identity: { serial: 'NOUUID-1' } })).statusCode).toBe(201);
    reader = (await t.api('POST', '/api/v1/tokens', { name: 'tateru-reader', role: 'reader' })).json().token;
    operator = (await t.api('POST', '/api/v1/tokens', { name: 'tateru-operator', role: 'operator' })).json().token;
  });
  afterAll(async () => t?.close());

  const v1 = (method: string, url: string, body?: unknown, authorization = basic('ansible', t.adminToken)) =>
    t.inject(method, url, { headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body } : {}) });

  it('finds machines by name, serial number, asset tag, UUID (any case) and id, as a list', async () => {
    const expected = { uuid: A.uuid.toLowerCase(), serialNumber: 'CZ00001401', assetTag: 'AT-1401', name: a.name, managedBy: API_URL };
    for (const alias of [a.name, 'CZ00001401', 'AT-1401', A.uuid, A.uuid.toLowerCase(), a.id]) {
      const r = await v1('GET', `/v1/machines?alias=${encodeURIComponent(alias)}`);
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json(), alias).toEqual([expected]);
    }
    expect((await v1('GET', '/v1/machines?alias=nothing-like-it')).json()).toEqual([]);
    const all = (await v1('GET', '/v1/machines')).json();
    expect(all.map((m: any) => m.name).sort()).toEqual([a.name, bName, 'no-uuid'].sort());
    const noUuid = all.find((m: any) => m.name === 'no-uuid');
    expect(noUuid).toEqual({ uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), serialNumber: 'NOUUID-1', name: 'no-uuid', managedBy: API_URL });
    expect((await v1('GET', `/v1/machines/${noUuid.uuid}`)).json()).toEqual(noUuid);
    expect((await v1('GET', `/v1/machines/${A.uuid}`)).json()).toEqual(expected);
    const missing = await v1('GET', '/v1/machines/0b3c7e1a-0000-4000-8000-000000000001');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.message).toBe("no machine has uuid '0b3c7e1a-0000-4000-8000-000000000001'");
    // A name is an alias, not a UUID.
    expect((await v1('GET', `/v1/machines/${a.name}`)).statusCode).toBe(404);
  });

  it('refuses bad boot-installer requests naming the field, changing nothing', async () => {
    // A reader may look, not boot. Each token's use is recorded (at most once a minute) before the snapshot.
    expect((await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY }, basic('x', reader))).statusCode).toBe(403);
    const asOperator = basic('ansible', operator);
    expect((await v1('GET', '/v1/machines', undefined, asOperator)).statusCode).toBe(200);
    const before = await snapshot(t.controller);
    const cases: [unknown, string][] = [
      [{}, 'ssh_pub_key'],
      [{ ssh_pub_key: 'not a key' }, 'ssh_pub_key'],
      [{ ssh_pub_key: KEY, nonce: '' }, 'nonce'],
      [{ ssh_pub_key: KEY, nonce: 7 }, 'nonce'],
      [{ ssh_pub_key: KEY, extra: true }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const r = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, body, asOperator);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.message, JSON.stringify(body)).toContain(field);
    }
    expect((await v1('POST', `/v1/machines/0b3c7e1a-0000-4000-8000-000000000001/boot-installer`, { ssh_pub_key: KEY }, asOperator)).statusCode).toBe(404);
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('boot-installer: the same nonce is the same operation, another one in flight is 409; the installer address appears once reported', async () => {
    const first = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY, nonce: 'n-1' });
    expect(first.statusCode, first.body).toBe(200);
    const op = first.json();
    expect(op).toMatchObject({ uuid: A.uuid.toLowerCase(), name: a.name, state: 'installer-booting', nonce: 'n-1' });
    const again = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY, nonce: 'n-1' });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual(op);
    for (const body of [{ ssh_pub_key: KEY, nonce: 'n-2' }, { ssh_pub_key: KEY }]) {
      const r = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, body);
      expect(r.statusCode, r.body).toBe(409);
      expect(r.json().error.message).toBe(`machine ${a.name} is installer-booting: another operation (run ${op.run}) is in flight`);
    }
    const otherKey = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: OTHER_KEY, nonce: 'n-1' });
    expect(otherKey.statusCode).toBe(409);
    expect(otherKey.json().error.message).toBe(`nonce: 'n-1' already started run ${op.run} with another ssh_pub_key`);
    const runs = (await t.api('GET', `/api/v1/machines/${a.name}/runs`)).json().items.filter((r: any) => r.kind === 'installer');
    expect(runs.map((r: any) => r.id)).toEqual([op.run]);
    expect(runs[0].params).toMatchObject({ authorizedKeys: [KEY], returnTo: 'available', nonce: 'n-1' });

    // Not up yet: no address, as Tateru's document has it.
    expect((await v1('GET', `/v1/machines/${A.uuid}`)).json()).not.toHaveProperty('installerAddress');
    const up = await installerUp(injectHttp(t.controller.app), A, { port: 2222, addresses: ['192.0.2.40'] });
    expect(up.authorizedKeys).toEqual([KEY]);
    const held = (await v1('GET', `/v1/machines?alias=${a.name}`)).json();
    expect(held).toEqual([expect.objectContaining({ installerAddress: '192.0.2.40', sshPorts: { installer: 2222 } })]);
    // The same nonce after the state moved on: still that operation, as it is now.
    expect((await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY, nonce: 'n-1' })).json()).toEqual({ ...op, state: 'installer' });

    // The installer's callback, with its run ticket: records the port, answers the key.
    const cb = (uuid: string, body: unknown, token?: string) => t.inject('POST', `/v1/machines/${uuid}/installer-callback`, { ...(token ? { token } : {}), body });
    expect((await cb(A.uuid, { sshPorts: { installer: 22 } })).statusCode).toBe(401);
    expect((await cb(A.uuid, { sshPorts: { installer: 22 } }, t.adminToken)).statusCode).toBe(401);
    const bad = await cb(A.uuid, { serialNumber: 'CZ00001401' }, up.token);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('sshPorts');
    const wrong = await cb(B.uuid, { sshPorts: { installer: 22 } }, up.token);
    expect(wrong.statusCode).toBe(403);
    const ok = await cb(A.uuid, { sshPorts: { installer: 22 }, hostKeys: [INSTALLER_HOST_KEY], addresses: ['192.0.2.41'] }, up.token);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual({ ssh_pub_key: KEY });
    expect((await v1('GET', `/v1/machines/${A.uuid}`)).json()).toMatchObject({ installerAddress: '192.0.2.41', sshPorts: { installer: 22 } });
    expect((await t.api('GET', `/api/v1/machines/${a.name}/installer`)).json().knownHosts).toEqual(['192.0.2.41 ' + INSTALLER_HOST_KEY.split(' ').slice(0, 2).join(' ')]);

    // Exited through Plinth's API: the machine is free again, the old nonce still names the old run.
    expect((await t.api('POST', `/api/v1/machines/${a.name}/actions/exit-installer`, { to: 'previous' })).statusCode).toBe(200);
    expect((await v1('GET', `/v1/machines/${A.uuid}`)).json()).not.toHaveProperty('installerAddress');
    expect((await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY, nonce: 'n-1' })).json()).toEqual({ ...op, state: 'available' });
    const fresh = await v1('POST', `/v1/machines/${A.uuid}/boot-installer`, { ssh_pub_key: KEY });
    expect(fresh.statusCode, fresh.body).toBe(200);
    expect(fresh.json()).toMatchObject({ state: 'installer-booting', nonce: null });
    expect(fresh.json().run).not.toBe(op.run);
    expect((await t.api('POST', `/api/v1/machines/${a.name}/actions/abort`, {})).statusCode).toBe(200);
  });

  it('HTTP Basic auth: the API token as password (any user) on the whole API; Bearer still works', async () => {
    for (const path of ['/api/v1/machines', '/v1/machines', '/api/v1/tokens']) {
      expect((await v1('GET', path)).statusCode, path).toBe(200);
      expect((await v1('GET', path, undefined, basic('', t.adminToken))).statusCode, path).toBe(200);
      expect((await v1('GET', path, undefined, `Bearer ${t.adminToken}`)).statusCode, path).toBe(200);
    }
    const refused: [string, string][] = [
      [basic('ansible', 'not-a-token'), 'token is unknown, revoked or expired'],
      [basic(t.adminToken, ''), 'Authorization header must be "Bearer <token>" or Basic with the token as password'],
      ['Basic !!!', 'Authorization header must be "Bearer <token>" or Basic with the token as password'],
      [`Digest ${t.adminToken}`, 'Authorization header must be "Bearer <token>" or Basic with the token as password'],
    ];
    for (const [authorization, message] of refused) {
      const r = await v1('GET', '/v1/machines', undefined, authorization);
      expect(r.statusCode, authorization).toBe(401);
      expect(r.json().error.message).toBe(message);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer realm="plinth"/);
    }
    const none = await t.inject('GET', '/v1/machines');
    expect(none.statusCode).toBe(401);
    // The role of the token still applies: a reader's Basic credentials cannot create tokens.
    const r = await v1('POST', '/api/v1/tokens', { name: 'x', role: 'reader' }, basic('u', reader));
    expect(r.statusCode).toBe(403);
  });
});
