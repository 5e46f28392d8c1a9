import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { nulRefused } from '../../src/store/database.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Hostile or careless API input: every request below must be refused with a 4xx that names
 * the field, and must write nothing, on both databases.
 */
describe.each(backends)('API input on $name', (backend) => {
  let t: TC;
  let bmc: string;
  let hypervisor: string;
  beforeAll(async () => {
    t = await freshController(backend);
    bmc = (await t.api('POST', '/api/v1/appliances', { name: 'bmc-a', type: 'redfish', address: 'https://10.0.0.5', username: 'root', password: 'calvin' })).json().id;
    hypervisor = (await t.api('POST', '/api/v1/appliances', { name: 'virt-a', type: 'libvirt', address: 'qemu+ssh://root@10.0.0.6/system' })).json().id;
    await t.api('POST', '/api/v1/machines', { name: 'linked', provider: { applianceId: bmc, ref: '/redfish/v1/Systems/1' } });
  });
  afterAll(async () => t?.close());

  async function refused(method: string, path: string, body: unknown, field: string, status = 400) {
    const before = await snapshot(t.controller);
    const res = await t.api(method, path, body);
    expect(res.statusCode, res.body).toBe(status);
    const err = res.json().error;
    expect(err.details?.field, res.body).toBe(field);
    expect(err.message).toContain(field);
    expect(await snapshot(t.controller)).toBe(before);
    return err;
  }

  describe('a provider reference cannot point a BMC call at another host', () => {
    const foreign = ['http://elsewhere.example/redfish/v1/Systems/1', 'https://10.0.0.5:8443/redfish/v1/Systems/1', 'http://10.0.0.5/redfish/v1/Systems/1', '//elsewhere.example/x', '/\\elsewhere.example/x'];

    it('refuses it at create', async () => {
      for (const ref of foreign) await refused('POST', '/api/v1/machines', { name: 'stolen', provider: { applianceId: bmc, ref } }, 'provider.ref');
    });

    it('refuses it at update, alone or with a new appliance', async () => {
      for (const ref of foreign) await refused('PATCH', '/api/v1/machines/linked', { provider: { ref } }, 'provider.ref');
      const bare = (await t.api('POST', '/api/v1/machines', { name: 'bare', provider: { ref: 'http://elsewhere.example/x' } })).json();
      // The reference alone names no endpoint yet; linking it to an appliance checks it there.
      await refused('PATCH', `/api/v1/machines/${bare.name}`, { provider: { applianceId: bmc } }, 'provider.ref');
      await t.api('DELETE', `/api/v1/machines/${bare.name}`);
    });

    it('accepts paths and absolute links on the appliance itself', async () => {
      for (const ref of ['/redfish/v1/Systems/2', 'https://10.0.0.5/redfish/v1/Systems/2', 'https://10.0.0.5:443/redfish/v1/Systems/2', 'System.Embedded.1']) {
        const r = await t.api('PATCH', '/api/v1/machines/linked', { provider: { ref } });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json().provider).toEqual({ applianceId: bmc, ref });
      }
    });

    it('refuses a URL or an option as the reference of a tool-driven appliance', async () => {
      await refused('POST', '/api/v1/machines', { name: 'virt-x', provider: { applianceId: hypervisor, ref: 'qemu+ssh://root@elsewhere/system' } }, 'provider.ref');
      await refused('POST', '/api/v1/machines', { name: 'virt-x', provider: { applianceId: hypervisor, ref: '--connect=qemu:///system' } }, 'provider.ref');
      expect((await t.api('POST', '/api/v1/machines', { name: 'virt-ok', provider: { applianceId: hypervisor, ref: 'vm-7' } })).statusCode).toBe(201);
    });
  });

  it('refuses an appliance that does not exist, naming provider.applianceId', async () => {
    await refused('POST', '/api/v1/machines', { name: 'ghost', provider: { applianceId: 'no-such-appliance' } }, 'provider.applianceId');
    await refused('PATCH', '/api/v1/machines/linked', { provider: { applianceId: 'no-such-appliance' } }, 'provider.applianceId');
    await refused('PATCH', '/api/v1/machines/linked', { provider: { applianceId: 'bmc-a' } }, 'provider.applianceId');
  });

  describe('tags are checked key and value, never a 500', () => {
    const shapes: Array<[Record<string, unknown>, string]> = [
      [{ 'bad key': 'v' }, 'tags'],
      [{ 'bad key': 5 }, 'tags'],
      [{ 'bad key': { nested: true } }, 'tags'],
      [{ 'bad key': null }, 'tags'],
      [{ '': 'v' }, 'tags'],
      [{ '-lead': 'v' }, 'tags'],
      [{ ['k'.repeat(64)]: 'v' }, 'tags'],
      [{ rack: 5 }, 'tags.rack'],
      [{ rack: ['r1'] }, 'tags.rack'],
      [{ rack: 'v'.repeat(256) }, 'tags.rack'],
    ];

    it('at create', async () => {
      for (const [tags, field] of shapes) await refused('POST', '/api/v1/machines', { name: 'tagged', tags }, field);
    });

    it('at update', async () => {
      for (const [tags, field] of shapes) await refused('PATCH', '/api/v1/machines/linked', { tags }, field);
    });

    it('names the offending key', async () => {
      const err = await refused('POST', '/api/v1/machines', { tags: { 'bad key': 5 } }, 'tags');
      expect(err.message).toContain("key 'bad key'");
    });
  });

  describe('a NUL character in any string is a 400 naming the field, on both databases', () => {
    const N = '\u0000';
    const writes: Array<[string, string, unknown, string]> = [
      ['POST', '/api/v1/machines', { name: 'nul', identity: { serial: `CZ${N}1` } }, 'identity.serial'],
      ['POST', '/api/v1/machines', { name: 'nul', identity: { macs: ['52:54:00:aa:00:09', `52:54${N}`] } }, 'identity.macs[1]'],
      ['POST', '/api/v1/machines', { name: 'nul', tags: { rack: `r${N}1` } }, 'tags.rack'],
      ['POST', '/api/v1/machines', { name: 'nul', tags: { [`ra${N}ck`]: 'r1' } }, 'tags'],
      ['POST', '/api/v1/machines', { name: 'nul', owner: `team${N}` }, 'owner'],
      ['POST', '/api/v1/machines', { name: `n${N}ul` }, 'name'],
      ['PATCH', '/api/v1/machines/linked', { maintenance: true, maintenanceReason: `disk${N}` }, 'maintenanceReason'],
      ['PATCH', '/api/v1/machines/linked', { provider: { ref: `/redfish/v1/Systems/1${N}` } }, 'provider.ref'],
      ['POST', '/api/v1/tokens', { name: `ci${N}`, role: 'reader' }, 'name'],
      ['POST', '/api/v1/appliances', { name: 'bmc-nul', type: 'redfish', address: 'https://10.0.0.7', password: `cal${N}vin` }, 'password'],
      ['POST', '/api/v1/machines/linked/actions/inspect', { reason: `because${N}` }, 'reason'],
      ['PATCH', '/api/v1/appliances/bmc-a', { password: `cal${N}vin` }, 'password'],
      ['POST', '/api/v1/appliances/bmc-a/move', { to: 'virt-a', machines: [`lin${N}ked`] }, 'machines[0]'],
    ];

    it('in request bodies, writing nothing', async () => {
      const appliances = (await t.api('GET', '/api/v1/appliances')).json().items.length;
      for (const [method, path, body, field] of writes) {
        const err = await refused(method, path, body, field);
        expect(err.details.in).toBe('body');
      }
      expect((await t.api('GET', '/api/v1/appliances')).json().items).toHaveLength(appliances);
    });

    it('in path parameters and query strings', async () => {
      const path = await refused('GET', '/api/v1/machines/linked%00', undefined, 'machine');
      expect(path.details.in).toBe('params');
      const query = await refused('GET', '/api/v1/machines?q=a%00b', undefined, 'q');
      expect(query.details.in).toBe('querystring');
      await refused('DELETE', '/api/v1/machines/linked%00', undefined, 'machine');
    });

    it('is recognised when the database itself refuses it (paths outside /api map it to a 400)', async () => {
      const db = t.controller.services.store.db;
      const write = db.updateTable('machines').set({ owner: `x${N}y` }).where('name', '=', 'linked').execute();
      if (backend.name === 'postgres') {
        const err = await write.then(() => null, (e: unknown) => e);
        expect(nulRefused(err)).toBe(true);
      } else {
        await write;
        await db.updateTable('machines').set({ owner: null }).where('name', '=', 'linked').execute();
      }
    });
  });
});
