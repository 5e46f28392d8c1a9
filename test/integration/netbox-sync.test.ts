/**
 * `plinth netbox sync` against the fake NetBox 4.x of test/support/peers/netbox-server.ts
 * (NetBox itself cannot run here): devices of the filter across several pages become
 * machines, a second sync changes nothing, state and serial are written back to custom
 * fields, a refused token is one clear line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { startNetbox, type FakeDevice, type NetboxPeer } from '../support/peers/netbox-server.js';

type TC = Awaited<ReturnType<typeof freshController>>;

const devices = (): FakeDevice[] => [
  { id: 1, name: 'r1-srv01', serial: 'NB-0001', asset_tag: 'AT-1', site: 'dc1', role: 'compute', primary_ip: '10.1.0.11/24', macs: ['52:54:00:c0:00:01', '52:54:00:c0:01:01'], custom_fields: { rack_unit: 12, warranty: 'gold', plinth_state: null, plinth_serial: null } },
  { id: 2, name: 'R1-SRV02.dc1.example.net', serial: 'NB-0002', site: 'dc1', role: 'compute', macs: ['52:54:00:c0:00:02'] },
  { id: 3, name: 'r1-srv03', serial: 'NB-0003', site: 'dc1', role: 'storage', tags: ['ceph'], macs: ['52:54:00:c0:00:03'] },
  { id: 4, name: 'r1-srv04', serial: '', site: 'dc1', role: 'compute', macs: ['52:54:00:c0:00:04'] },
  { id: 5, name: 'r1-srv05', serial: 'NB-0005', site: 'dc1', role: 'compute' },
  { id: 6, name: 'r1-srv06', serial: 'NB-0006', site: 'dc1', role: 'compute' },
  { id: 7, name: 'r1-srv07', serial: 'NB-0007', site: 'dc1', role: 'compute' },
  { id: 8, name: null, serial: 'To be filled by O.E.M.', site: 'dc1', role: 'compute' },
  { id: 9, name: 'elsewhere', serial: 'NB-0009', site: 'dc2', role: 'compute' },
];

describe.each(backends)('netbox sync on $name', (backend) => {
  let nb: NetboxPeer;
  let t: TC;
  let run: ReturnType<typeof inProcessCli>;

  beforeAll(async () => {
    // NetBox says its address is netbox.internal (behind a proxy): `next` must come back to the configured one.
    nb = await startNetbox({ devices: devices(), maxPageSize: 3, customFields: ['plinth_state', 'plinth_serial'], advertisedOrigin: 'http://netbox.internal' });
    t = await freshController(backend, { netbox: { url: nb.url, token: nb.token, filter: { site: 'dc1' }, writeBack: true } });
    const url = await t.controller.listen();
    run = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    // A machine that enrolled itself before NetBox was connected: matched by its MAC.
    expect((await t.api('POST', '/api/v1/machines', { name: 'pxe-found', identity: { macs: ['52:54:00:c0:00:03'] } })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await nb?.close();
  });

  const patches = () => nb.requests.filter((r) => r.method === 'PATCH');

  it('--dry-run: the plan over every page, nothing written here or in NetBox', async () => {
    const r = await run('netbox', 'sync', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('note: device 8 skipped: no name usable as a hostname and no serial, asset tag or MAC address\n');
    expect(r.stdout).toContain('device 3 (r1-srv03) pxe-found update name,serial,tags.netbox.id,tags.netbox.site,tags.netbox.role');
    expect(r.stdout).toMatch(/dry run: 6 to create, 1 to update, 0 unchanged; nothing was changed\n$/);
    expect((await t.api('GET', '/api/v1/machines')).json().items.map((m: { name: string }) => m.name)).toEqual(['pxe-found']);
    expect(patches()).toEqual([]);
    // Three pages of devices (limit capped at 3), each asked of the configured address with the token.
    const pages = nb.requests.filter((q) => q.url.startsWith('/api/dcim/devices/')).map((q) => new URL(q.url, nb.url).searchParams.get('offset'));
    expect(pages).toEqual(['0', '3', '6']);
    expect(nb.requests.every((q) => q.authorized)).toBe(true);
  });

  it('creates and updates machines from the devices; state and serial written back', async () => {
    nb.requests.length = 0;
    const r = await run('netbox', 'sync', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ devices: 8, import: { format: 'netbox', created: 6, updated: 1, unchanged: 0 } });
    const m1 = (await t.api('GET', '/api/v1/machines/r1-srv01')).json();
    expect(m1.identity).toMatchObject({ serial: 'NB-0001', assetTag: 'AT-1', macs: ['52:54:00:c0:00:01', '52:54:00:c0:01:01'] });
    expect(m1.tags).toEqual({ 'netbox.id': '1', 'netbox.site': 'dc1', 'netbox.role': 'compute', 'netbox.primary_ip': '10.1.0.11', rack_unit: '12', warranty: 'gold' });
    expect((await t.api('GET', '/api/v1/machines/r1-srv02')).json().identity.serial).toBe('NB-0002');
    expect((await t.api('GET', '/api/v1/machines/pxe-found')).statusCode).toBe(404);
    const found = (await t.api('GET', '/api/v1/machines/r1-srv03')).json();
    expect(found.identity.macs).toEqual(['52:54:00:c0:00:03']);
    expect((await t.api('GET', '/api/v1/machines/elsewhere')).statusCode).toBe(404);
    expect(nb.device(1).custom_fields).toMatchObject({ plinth_state: 'enrolled', plinth_serial: 'NB-0001' });
    expect(nb.device(4).custom_fields).toEqual({ plinth_state: 'enrolled' });
    expect(out.writtenBack).toHaveLength(7);
    expect(patches()).toHaveLength(7);
  });

  it('a second sync changes nothing, here or in NetBox', async () => {
    nb.requests.length = 0;
    const r = await run('netbox', 'sync');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("nothing to change: 7 machine(s) already as NetBox's 8 device(s) says\n");
    expect(patches()).toEqual([]);
  });

  it('follows NetBox: a serial changed there updates the machine; a serial learnt here goes back', async () => {
    nb.update(5, { serial: 'NB-0005-R' });
    expect((await t.api('PATCH', '/api/v1/machines/r1-srv04', { identity: { serial: 'FACT-0004' } })).statusCode).toBe(200);
    nb.requests.length = 0;
    const r = await run('netbox', 'sync', '--json');
    const out = JSON.parse(r.stdout);
    expect(out.import).toMatchObject({ created: 0, updated: 1, unchanged: 6 });
    expect(out.import.items.find((i: { machine: string }) => i.machine === 'r1-srv05')).toMatchObject({ action: 'update', changes: ['serial'] });
    expect((await t.api('GET', '/api/v1/machines/r1-srv05')).json().identity.serial).toBe('NB-0005-R');
    expect(nb.device(4).custom_fields).toEqual({ plinth_state: 'enrolled', plinth_serial: 'FACT-0004' });
    expect(nb.device(5).custom_fields).toEqual({ plinth_state: 'enrolled', plinth_serial: 'NB-0005-R' });
    expect(out.writtenBack).toEqual(['device 4 (r1-srv04)', 'device 5 (r1-srv05)']);
  });

  it('a refused token is one line saying so, the token never shown; nothing changes', async () => {
    const bad = await freshController(backend, { netbox: { url: nb.url, token: 'nbt_wrongkey.0000', filter: { site: 'dc1' } } });
    try {
      const cli = inProcessCli({ PLINTH_URL: await bad.controller.listen(), PLINTH_TOKEN: bad.adminToken, PLINTH_DATA_DIR: bad.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
      const r = await cli('netbox', 'sync');
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('plinth: netbox: GET /api/dcim/devices/ answered 403: Invalid v2 token (check netbox.token and its permissions)\n');
      expect((await bad.api('GET', '/api/v1/machines')).json().items).toEqual([]);
    } finally {
      await bad.close();
    }
  });

  it('netbox.interval: the controller syncs by itself, and a failing sync is tried again', async () => {
    const peer = await startNetbox({ devices: [{ id: 40, name: 'by-itself', serial: 'NB-0040', site: 'dc1', role: 'compute' }] });
    const c = await freshController(backend, { netbox: { url: peer.url, token: 'nbt_wrong.0', interval: '50ms' } }, { noBackground: false });
    try {
      await c.controller.listen();
      // Refused first: the loop keeps asking (each request is a new attempt).
      while (peer.requests.length < 2) await new Promise((r) => setTimeout(r, 20));
      expect(peer.requests.every((q) => !q.authorized)).toBe(true);
      expect((await c.api('GET', '/api/v1/machines')).json().items).toEqual([]);
    } finally {
      await c.close();
    }
    const good = await freshController(backend, { netbox: { url: peer.url, token: peer.token, interval: '50ms' } }, { noBackground: false });
    try {
      await good.controller.listen();
      while ((await good.api('GET', '/api/v1/machines/by-itself')).statusCode !== 200) await new Promise((r) => setTimeout(r, 20));
      const events = (await good.api('GET', '/api/v1/machines/by-itself/events')).json().items;
      expect(events[0]).toMatchObject({ action: 'enroll', actor: 'system:netbox', reason: `imported (NetBox ${new URL(peer.url).host}, device 40 (by-itself))` });
    } finally {
      await good.close();
      await peer.close();
    }
  });

  it('without netbox.url the sync says what to set', async () => {
    const none = await freshController(backend);
    try {
      const r = await none.api('POST', '/api/v1/netbox/sync', {});
      expect(r.statusCode).toBe(422);
      expect(r.json().error.message).toMatch(/^no NetBox is configured: set netbox.url and netbox.token/);
    } finally {
      await none.close();
    }
  });
});
