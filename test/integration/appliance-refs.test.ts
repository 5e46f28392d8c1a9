import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * A BMC that names its system on another host (in the `@odata.id` of the system it serves)
 * must not get a machine linked there: the next power call would carry the appliance's
 * credentials to that host.
 */
describe.each(backends)('enlisting from a BMC that points elsewhere on $name', (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  beforeAll(async () => {
    peer = await startRedfishPeer({ username: 'root', password: 'calvin' });
    t = await freshController(backend, { providers: { jobDeadline: '20s', timeout: '5s' } });
    t.controller.power.start();
    const r = await t.api('POST', '/api/v1/appliances', { name: 'bmc-x', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' });
    expect(r.statusCode, r.body).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  it('reports the system as a conflict and links no machine', async () => {
    peer.system()['@odata.id'] = `http://elsewhere.example${peer.systemPath}`;
    const r = await t.api('POST', '/api/v1/appliances/bmc-x/enlist', {});
    expect(r.statusCode, r.body).toBe(200);
    const [e] = r.json().items;
    expect(e).toMatchObject({ outcome: 'conflict', machine: null });
    expect(e.note).toMatch(/^provider\.ref: .* is not on the appliance's endpoint/);
    expect((await t.api('GET', '/api/v1/machines')).json().items).toEqual([]);
  });
});
