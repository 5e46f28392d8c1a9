import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { bladeFacts, bladeHw, bladeSerial, bootAndReport, injectHttp, type Http } from './matching-support.js';
import { takeQuotaForDeploy } from '../../src/profiles/matching.js';
import { lookupProfileDeploy } from '../../src/profiles/deploy-lookup.js';

type TC = Awaited<ReturnType<typeof freshController>>;

const PRODUCT = 'ProLiant BL460c Gen8 (641016-B21)';
const operator = { kind: 'operator' as const, name: 'test' };
const system = { kind: 'system' as const, name: 'controller' };

describe.each(backends)('profiles and pools on $name', (backend) => {
  let t: TC;
  let http: Http;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-matching-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');

  beforeAll(async () => {
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    http = injectHttp(t.controller.app);
  });
  afterAll(async () => t?.close());

  /** Everything a request could change, the matching tables included. */
  async function snap(): Promise<string> {
    const db = t.controller.services.store.db;
    const parts = [await snapshot(t.controller)];
    for (const table of ['profiles', 'pools', 'pool_entries'] as const) {
      parts.push(JSON.stringify((await db.selectFrom(table).selectAll().execute()).map((r) => JSON.stringify(r)).sort()));
    }
    return parts.join('\n');
  }
  const apply = (body: unknown) => t.api('POST', '/api/v1/profiles/apply', body);
  const machine = async (serialIndex: number) => (await t.api('GET', `/api/v1/machines?q=${bladeSerial(serialIndex)}`)).json().items[0];
  const profile = async (name: string) => (await t.api('GET', `/api/v1/profiles/${name}`)).json();
  const inspect = async (i: number, variant: Parameters<typeof bladeFacts>[1] = {}) => {
    await bootAndReport(http, bladeFacts(i, variant));
    return machine(i);
  };
  const reinspect = async (i: number, variant: Parameters<typeof bladeFacts>[1] = {}) => {
    const m = await machine(i);
    expect((await t.api('POST', `/api/v1/machines/${m.name}/actions/inspect`, {})).statusCode).toBe(200);
    return inspect(i, variant);
  };
  const entryHolders = async (pool: string) =>
    (await t.api('GET', `/api/v1/pools/${pool}/entries`)).json().items.map((e: any) => [e.position, e.machine?.name ?? null, e.data.hostname ?? null]);

  it('refuses bad documents, naming the field, and writes nothing', async () => {
    await apply({ pools: [{ name: 'keep', entries: [{ hostname: 'k1' }] }] });
    const before = await snap();
    const cases: [unknown, number, RegExp][] = [
      [{ profiles: [{ name: 'p', spec: [['system', 'product', 'name']] }] }, 400, /^profiles\[0\]\.spec\[0\]: has 3 values/],
      [{ profiles: [{ name: 'p', spec: [['system', 'product', 'name', true]] }] }, 400, /^profiles\[0\]\.spec\[0\]\[3\]: must be a string or a number/],
      [{ profiles: [{ name: 'p', spec: [], deploy: { imagee: 'x' } }] }, 400, /^profiles\[0\]\.deploy\.imagee: is not a known field/],
      [{ profiles: [{ name: 'p', spec: [], deploy: { method: 'floppy' } }] }, 400, /^profiles\[0\]\.deploy\.method: must be one of image, preseed, kickstart, autoinstall/],
      [{ profiles: [{ name: 'p', specText: "[\n  ('system', 'product', 'name' 'x'),\n]" }] }, 400, /^profiles\[0\]\.specText: p\.specs:2:/],
      [{ profiles: [{ name: 'p', spec: [], specText: '[]' }] }, 400, /^profiles\[0\]\.specText: give the spec either/],
      [{ profiles: [{ name: 'p', spec: [], quota: -1 }] }, 400, /^profiles\[0\]\.quota: must be a whole number/],
      [{ profiles: [{ name: 'p', spec: [], quota: 'lots' }] }, 400, /^profiles\[0\]\.quota:/],
      [{ profiles: [{ name: 'ok', spec: [] }, { name: 'p', spec: [], pool: 'nope' }] }, 400, /^profiles\[1\]\.pool: no pool named 'nope'/],
      [{ profiles: [{ name: 'p', spec: [] }, { name: 'p', spec: [] }] }, 400, /^profiles\[1\]\.name: 'p' appears twice/],
      [{ pools: [{ name: 'q', generate: { ip: { $const: 1, x: 2 } } }] }, 400, /^pools\[0\]\.generate\.ip: '\$const' must be the only key/],
      [{ pools: [{ name: 'q', entries: [{ a: 1 }], generate: { a: 1 } }] }, 400, /^pools\[0\]\.generate: give either entries/],
      [{ pools: [{ name: 'keep', entries: [{ hostname: 'k1' }] }, { name: 'q', entries: [] }], profiles: [{ name: 'x', spec: [], pool: 'missing' }] }, 400, /^profiles\[0\]\.pool/],
      [{ profiles: [{ name: 'bad name!', spec: [] }] }, 400, /^profiles\[0\]\.name: /],
    ];
    for (const [body, status, message] of cases) {
      const r = await apply(body);
      expect(r.statusCode, r.body).toBe(status);
      expect(r.json().error.message).toMatch(message);
      expect(r.json().error.details.field).toBe(r.json().error.message.split(':')[0]);
    }
    expect(await snap()).toBe(before);
  });

  it('documents its routes in the OpenAPI document', async () => {
    const doc = (await t.api('GET', '/api/v1/openapi.json')).json();
    for (const path of ['/api/v1/profiles', '/api/v1/profiles/apply', '/api/v1/profiles/simulate', '/api/v1/profiles/explain/{machine}', '/api/v1/profiles/{profile}', '/api/v1/pools/{pool}/entries']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.paths['/api/v1/machines/{machine}'].get.responses['200']).toBeDefined();
  });

  it('applies pools and profiles, lists them in order, and re-applying changes nothing', async () => {
    const doc = {
      pools: [{ name: 'hosts', generate: { hostname: 'node01-03', ip: '10.0.0.1-3', netmask: '255.255.255.0' } }],
      profiles: [
        {
          name: 'blade',
          quota: 2,
          pool: 'hosts',
          spec: [
            ['system', 'product', 'name', PRODUCT],
            ['cpu', 'physical_0', 'cores', 8],
            ['network', '$eth', 'serial', '$mac'],
            ['system', 'product', 'serial', '$serial'],
          ],
          deploy: { image: 'debian-12', method: 'image', rootDeviceHints: { sizeGiB: 279 }, kernelArgs: 'quiet', installer: { kernelUrl: 'http://mirror/vmlinuz' } },
        },
        { name: 'any-hp', spec: [['system', 'product', 'vendor', 'HP']] },
      ],
    };
    const r = await apply(doc);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({
      pools: [{ name: 'hosts', outcome: 'created', entries: 3 }],
      profiles: [
        { name: 'blade', outcome: 'created', position: 10 },
        { name: 'any-hp', outcome: 'created', position: 20 },
      ],
    });
    const list = (await t.api('GET', '/api/v1/profiles')).json().items;
    expect(list.map((p: any) => [p.name, p.position, p.quota, p.remaining, p.held, p.pool])).toEqual([
      ['blade', 10, 2, 2, 0, 'hosts'],
      ['any-hp', 20, null, null, 0, null],
    ]);
    expect(list[0].spec[1]).toEqual(['cpu', 'physical_0', 'cores', '8']);
    expect(list[0].deploy).toEqual({ image: 'debian-12', method: 'image', rootDeviceHints: { sizeGiB: 279 }, kernelArgs: 'quiet', installer: { kernelUrl: 'http://mirror/vmlinuz' } });
    const pool = (await t.api('GET', '/api/v1/pools/hosts')).json();
    expect(pool).toMatchObject({ name: 'hosts', entries: { total: 3, free: 3, held: 0 }, profiles: ['blade'], model: doc.pools[0]!.generate });
    expect(await entryHolders('hosts')).toEqual([[0, null, 'node01'], [1, null, 'node02'], [2, null, 'node03']]);

    const before = await snap();
    const again = await apply(doc);
    expect(again.json().profiles.map((p: any) => p.outcome)).toEqual(['unchanged', 'unchanged']);
    expect(again.json().pools[0].outcome).toBe('unchanged');
    expect(await snap()).toBe(before);
  });

  it('matches at the end of inspection: the first profile in order with quota left, and a pool entry', async () => {
    const m1 = await inspect(1);
    const m2 = await inspect(2);
    const m3 = await inspect(3);
    expect(m1.state).toBe('available');
    expect(m1.match).toMatchObject({ profile: 'blade', error: null, poolEntry: { pool: 'hosts', position: 0 } });
    expect(m1.match.vars).toMatchObject({ hostname: 'node01', ip: '10.0.0.1', serial: bladeSerial(1), eth: 'eth0', used: 1 });
    expect(m2.match).toMatchObject({ profile: 'blade', poolEntry: { position: 1 }, vars: { hostname: 'node02' } });
    // blade's quota of 2 is used up: the third machine falls through to the next profile.
    expect(m3.match).toEqual({ profile: 'any-hp', vars: {}, poolEntry: null, matchedAt: expect.any(String), error: null });
    expect(await profile('blade')).toMatchObject({ quota: 2, remaining: 0, held: 2 });
    expect(await entryHolders('hosts')).toEqual([[0, m1.name, 'node01'], [1, m2.name, 'node02'], [2, null, 'node03']]);
    const events = (await t.api('GET', `/api/v1/machines/${m1.name}/events`)).json().items;
    expect(events.find((e: any) => e.action === 'match')).toMatchObject({ actor: 'system:matching', details: { profile: 'blade', pool: 'hosts', position: 0, reused: false, quota: 'taken' } });
    // What the deploy of the machine takes from its profile and its variables.
    const forDeploy = await lookupProfileDeploy(t.controller.services.store.db, { id: m1.id });
    expect(forDeploy).toEqual({
      profile: 'blade',
      vars: m1.match.vars,
      deploy: { image: 'debian-12', method: 'image', rootDeviceHints: { sizeGiB: 279 }, kernelArgs: 'quiet', installer: { kernel: 'http://mirror/vmlinuz' } },
    });
    expect(await lookupProfileDeploy(t.controller.services.store.db, { id: m3.id })).toEqual({ profile: 'any-hp', vars: {}, deploy: {} });
  });

  it('keeps the quota and the entry of a re-inspected machine', async () => {
    const m1 = await reinspect(1);
    expect(m1.match).toMatchObject({ profile: 'blade', poolEntry: { position: 0 }, vars: { hostname: 'node01' } });
    expect(await profile('blade')).toMatchObject({ remaining: 0, held: 2 });
    const last = (await t.api('GET', `/api/v1/machines/${m1.name}/events`)).json().items.filter((e: any) => e.action === 'match').pop();
    expect(last.details).toMatchObject({ quota: 'kept', reused: true, position: 0 });
  });

  it('explains, profile by profile, what matched and the first rule that failed', async () => {
    await apply({ profiles: [{ name: 'db', position: 5, specText: "[\n  ('system', 'product', 'vendor', 'HP'),\n  ('system', 'product', 'name', 'DB blade'),\n]\n" }] });
    const m3 = await machine(3);
    const r = await t.api('GET', `/api/v1/profiles/explain/${m3.name}`);
    expect(r.statusCode, r.body).toBe(200);
    const ex = r.json();
    expect(ex.selected).toBe('any-hp');
    expect(ex.current).toMatchObject({ profile: 'any-hp' });
    expect(ex.profiles.map((p: any) => [p.name, p.matched, p.quotaExhausted])).toEqual([
      ['db', false, false],
      ['blade', true, true],
      ['any-hp', true, false],
    ]);
    const db = ex.profiles[0];
    expect(db.failure).toMatchObject({ kind: 'no-candidate', rule: 2, spec: ['system', 'product', 'name', 'DB blade'], at: 'db.specs:3:3' });
    expect(db.failure.nearMisses[0]).toEqual({ line: ['system', 'product', 'name', PRODUCT], position: 4, reason: `'${PRODUCT}' is not 'DB blade'`, takenByRule: null });
    expect(db.text).toMatch(/^no match: rule 2 \('system', 'product', 'name', 'DB blade'\) at db\.specs:3:3 matches no hardware line\./);
    expect(ex.profiles[1].text).toMatch(/not tried: no quota left/);
    const none = await t.api('GET', '/api/v1/profiles/explain/no-such-machine');
    expect(none.statusCode).toBe(404);
    await t.api('DELETE', '/api/v1/profiles/db');
  });

  it('gives the quota back when a deploy fails, and a later deploy takes it again or is refused', async () => {
    const engine = t.controller.services.engine;
    const store = t.controller.services.store;
    const m1 = await machine(1);
    await engine.act(m1.name, 'deploy', { actor: operator });
    await engine.act(m1.name, 'fail', { actor: system, error: { code: 'image', message: 'image not found' } });
    expect(await profile('blade')).toMatchObject({ remaining: 1, held: 1 });
    const failed = (await t.api('GET', `/api/v1/machines/${m1.name}/events`)).json().items.find((e: any) => e.action === 'quota-returned');
    expect(failed.reason).toMatch(/^deploy failed: one of profile blade's quota is given back/);
    // The machine keeps its profile and entry; its quota is free for another machine.
    expect((await machine(1)).match).toMatchObject({ profile: 'blade', poolEntry: { position: 0 } });
    const m4 = await inspect(4);
    expect(m4.match).toMatchObject({ profile: 'blade', poolEntry: { position: 2 }, vars: { hostname: 'node03' } });
    expect(await profile('blade')).toMatchObject({ remaining: 0, held: 2 });
    await expect(store.transaction((trx) => takeQuotaForDeploy(trx, { id: m1.id }))).rejects.toThrow(
      `machine ${m1.name} cannot be deployed as profile blade: the profile has no quota left`,
    );
    // Raising the quota makes room: the next deploy takes it again.
    await apply({ profiles: [{ name: 'blade', quota: 3, pool: 'hosts', spec: (await profile('blade')).spec, deploy: (await profile('blade')).deploy }] });
    expect(await profile('blade')).toMatchObject({ quota: 3, remaining: 1, held: 2 });
    expect(await store.transaction((trx) => takeQuotaForDeploy(trx, { id: m1.id }))).toEqual({ profile: 'blade', taken: true });
    expect(await store.transaction((trx) => takeQuotaForDeploy(trx, { id: m1.id }))).toEqual({ profile: 'blade', taken: false });
    expect(await profile('blade')).toMatchObject({ quota: 3, remaining: 0, held: 3 });
    await engine.act(m1.name, 'abort', { actor: operator });
  });

  it('keeps the entry of a released machine unless its profile gives it back', async () => {
    const engine = t.controller.services.engine;
    const deployAndRelease = async (name: string) => {
      await engine.act(name, 'deploy', { actor: operator });
      await engine.act(name, 'installer-started', { actor: system });
      await engine.act(name, 'deploy-done', { actor: system });
      return engine.act(name, 'release', { actor: operator, params: { wipe: 'none' } });
    };
    const m2 = await machine(2);
    await deployAndRelease(m2.name);
    expect((await machine(2)).match).toMatchObject({ profile: 'blade', poolEntry: { position: 1 }, vars: { hostname: 'node02' } });

    const blade = await profile('blade');
    await apply({ profiles: [{ name: 'blade', quota: 3, pool: 'hosts', spec: blade.spec, deploy: blade.deploy, releaseReturnsEntry: true }] });
    const released = await deployAndRelease(m2.name);
    expect(released.machine.match).toMatchObject({ profile: 'blade', poolEntry: null, vars: { serial: bladeSerial(2), eth: 'eth0' } });
    expect(released.machine.match?.vars.hostname).toBeUndefined();
    expect((await entryHolders('hosts'))[1]).toEqual([1, null, 'node02']);
    const entry = (await t.api('GET', '/api/v1/pools/hosts/entries')).json().items[1];
    expect(entry).toMatchObject({ used: false, machine: null, allocatedAt: null, data: { hostname: 'node02', ip: '10.0.0.2', netmask: '255.255.255.0' } });
    expect(Object.keys(entry.data)).toEqual(['hostname', 'ip', 'netmask']);
    // Inspected again, it finds its old entry free and takes it back.
    expect((await reinspect(2)).match).toMatchObject({ profile: 'blade', poolEntry: { position: 1 }, vars: { hostname: 'node02' } });
  });

  it('gives a reinstalled machine its old entry back by its $$ variables, and refuses unknown ones', async () => {
    await apply({
      pools: [
        {
          name: 'db-hosts',
          entries: [
            { serial: bladeSerial(6), hostname: 'db-b' },
            { serial: bladeSerial(5), hostname: 'db-a' },
          ],
        },
      ],
      profiles: [{ name: 'db', position: 1, quota: 5, pool: 'db-hosts', spec: [['system', 'product', 'name', 'DB blade'], ['system', 'product', 'serial', '$$serial']] }],
    });
    const m6 = await inspect(6, { product: 'DB blade' });
    expect(m6.match).toMatchObject({ profile: 'db', poolEntry: { pool: 'db-hosts', position: 0 }, vars: { serial: bladeSerial(6), hostname: 'db-b' } });
    expect((await t.api('DELETE', `/api/v1/machines/${m6.name}`)).statusCode).toBe(204);
    expect(await profile('db')).toMatchObject({ remaining: 5, held: 0 });
    expect((await t.api('GET', '/api/v1/pools/db-hosts/entries')).json().items[0]).toMatchObject({ machine: null, used: false, data: { serial: bladeSerial(6), hostname: 'db-b' } });
    // The same blade, enrolled anew after its record was deleted, gets its hostname back.
    const again = await inspect(6, { product: 'DB blade' });
    expect(again.id).not.toBe(m6.id);
    expect(again.match).toMatchObject({ profile: 'db', poolEntry: { position: 0 }, vars: { hostname: 'db-b' } });
    const m7 = await inspect(7, { product: 'DB blade' });
    expect(m7.match).toEqual({ profile: null, vars: {}, poolEntry: null, matchedAt: expect.any(String), error: 'No entry matched in the CMDB, aborting.' });
    expect(await profile('db')).toMatchObject({ remaining: 4, held: 1 });
    const ev = (await t.api('GET', `/api/v1/machines/${m7.name}/events`)).json().items.find((e: any) => e.action === 'match-failed');
    expect(ev).toMatchObject({ reason: 'No entry matched in the CMDB, aborting.', details: { profile: 'db', pool: 'db-hosts', lookup: { serial: bladeSerial(7) } } });
  });

  it('gives the quota back and records the error when the pool is exhausted', async () => {
    await apply({
      pools: [{ name: 'tiny', entries: [{ hostname: 'only' }] }],
      profiles: [{ name: 'tiny', position: 2, quota: 5, pool: 'tiny', spec: [['system', 'product', 'name', 'Tiny blade']] }],
    });
    const a = await inspect(8, { product: 'Tiny blade' });
    const b = await inspect(9, { product: 'Tiny blade' });
    expect(a.match).toMatchObject({ profile: 'tiny', vars: { hostname: 'only', used: 1 } });
    expect(b.state).toBe('available');
    expect(b.match).toMatchObject({ profile: null, poolEntry: null, error: 'No more entry in the CMDB, aborting.' });
    expect(await profile('tiny')).toMatchObject({ quota: 5, remaining: 4, held: 1 });
    // Deleting the machine that holds the entry frees it (and its quota) for the next one.
    await t.api('DELETE', `/api/v1/machines/${a.name}`);
    expect(await profile('tiny')).toMatchObject({ remaining: 5, held: 0 });
    const held = await reinspect(9, { product: 'Tiny blade' });
    expect(held.match).toMatchObject({ profile: 'tiny', error: null, vars: { hostname: 'only' } });
    // Lists and counts filter by the profile a machine was given.
    expect((await t.api('GET', '/api/v1/machines?profile=tiny')).json().items.map((m: any) => m.name)).toEqual([held.name]);
    expect((await t.api('GET', '/api/v1/machine-counts?profile=tiny')).json()).toEqual({ total: 1, byState: { [held.state]: 1 } });
  });

  it('reports the eDeploy message when no profile matches', async () => {
    const m = await inspect(10, { product: 'Something else', cores: '4' });
    expect(m.match.profile).toBe('any-hp');
    await apply({ profiles: [{ name: 'any-hp', spec: [['system', 'product', 'vendor', 'HPE']] }] });
    const again = await reinspect(10, { product: 'Something else', cores: '4' });
    expect(again.match).toMatchObject({ profile: null, error: 'Unable to match requirements on the following available roles in profiles: db, tiny, any-hp' });
  });

  it('simulates without changing anything', async () => {
    const before = await snap();
    const fromInventory = await t.api('POST', '/api/v1/profiles/simulate', {});
    expect(fromInventory.statusCode, fromInventory.body).toBe(200);
    const sim = fromInventory.json();
    expect(sim.source).toBe('inventory');
    // Every machine keeps what it holds, in name order.
    const byMachine = new Map(sim.items.map((i: any) => [i.machine, i]));
    expect(byMachine.get((await machine(1)).name)).toMatchObject({ profile: 'blade', poolEntry: { pool: 'hosts', position: 0, reused: true } });
    expect(byMachine.get((await machine(7)).name)).toMatchObject({ profile: null, error: 'No entry matched in the CMDB, aborting.' });

    const lists = await t.api('POST', '/api/v1/profiles/simulate', {
      machines: [
        { name: 'new-db-5', hw: bladeHw(5, { product: 'DB blade' }) },
        { name: 'new-db-99', hw: bladeHw(99, { product: 'DB blade' }) },
        { name: 'new-blade', hw: bladeHw(100) },
      ],
    });
    expect(lists.statusCode, lists.body).toBe(200);
    expect(lists.json().items).toEqual([
      { machine: 'new-db-5', profile: 'db', poolEntry: { pool: 'db-hosts', position: 1, reused: true }, vars: { serial: bladeSerial(5), hostname: 'db-a', used: 1 }, error: null },
      { machine: 'new-db-99', profile: null, poolEntry: null, vars: {}, error: 'No entry matched in the CMDB, aborting.' },
      { machine: 'new-blade', profile: null, poolEntry: null, vars: {}, error: 'Unable to match requirements on the following available roles in profiles: db, tiny, any-hp' },
    ]);
    expect(lists.json().profiles.find((p: any) => p.name === 'db')).toEqual({ name: 'db', remainingBefore: 4, remainingAfter: 3 });
    const bad = await t.api('POST', '/api/v1/profiles/simulate', { machines: [{ name: 'x', hw: [['a', 'b', 'c']] }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^machines\[0\]\.hw\[0\]: has 3 values/);
    expect(await snap()).toBe(before);
  });

  it('protects entries held by machines when a pool changes, and grows pools in place', async () => {
    const before = await snap();
    const shrink = await t.api('POST', '/api/v1/pools/apply', { pools: [{ name: 'hosts', generate: { hostname: 'node01-02', ip: '10.0.0.1-2', netmask: '255.255.255.0' } }] });
    expect(shrink.statusCode, shrink.body).toBe(409);
    expect(shrink.json().error.message).toMatch(/^pools\[0\]\.generate: entry 2 of pool hosts is held by machine \S+; it cannot be removed/);
    const change = await t.api('PUT', '/api/v1/pools/hosts', { name: 'hosts', entries: [{ hostname: 'other' }] });
    expect(change.statusCode).toBe(409);
    expect(change.json().error.details).toMatchObject({ field: 'body.entries[0]', position: 0 });
    expect(await snap()).toBe(before);

    const grow = await t.api('PUT', '/api/v1/pools/hosts', { name: 'hosts', generate: { hostname: 'node01-05', ip: '10.0.0.1-5', netmask: '255.255.255.0' } });
    expect(grow.statusCode, grow.body).toBe(200);
    expect(grow.json().entries).toEqual({ total: 5, free: 2, held: 3 });
    expect((await entryHolders('hosts')).map((e: any[]) => [e[0], e[2], e[1] !== null])).toEqual([
      [0, 'node01', true],
      [1, 'node02', true],
      [2, 'node03', true],
      [3, 'node04', false],
      [4, 'node05', false],
    ]);
  });

  it('refuses to delete what machines use, unless forced', async () => {
    const usedPool = await t.api('DELETE', '/api/v1/pools/hosts');
    expect(usedPool.statusCode).toBe(409);
    expect(usedPool.json().error.message).toBe('pool hosts is used by profile(s) blade; change them first');
    const used = await t.api('DELETE', '/api/v1/profiles/blade');
    expect(used.statusCode).toBe(409);
    expect(used.json().error.message).toMatch(/^profile blade is the profile of machine\(s\) /);
    expect((await t.api('DELETE', '/api/v1/profiles/blade?force=true')).statusCode).toBe(204);
    const m1 = await machine(1);
    expect(m1.match).toMatchObject({ profile: null, poolEntry: { pool: 'hosts', position: 0 } });
    const held = await t.api('DELETE', '/api/v1/pools/hosts');
    expect(held.statusCode).toBe(409);
    expect(held.json().error.message).toBe('3 entries of pool hosts are held by machines; delete with force to take them back');
    expect((await t.api('DELETE', '/api/v1/pools/hosts?force=true')).statusCode).toBe(204);
    expect((await machine(1)).match).toMatchObject({ profile: null, poolEntry: null, vars: { serial: bladeSerial(1) } });
    expect((await t.api('GET', '/api/v1/pools/hosts')).statusCode).toBe(404);
  });
});
