/**
 * `plinth machine import`: Plinth's machines document and TripleO's nodes.json, through the
 * CLI and the API on both databases. Idempotent, all or nothing, problems named by entry and
 * field; BMCs become appliances with sealed passwords, and a nodes.json whose IPMI entries
 * point at OpenIPMI's ipmi_sim gives machines whose power the simulated BMCs really answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { startIpmiSim, type IpmiSimPeer } from '../support/peers/ipmi-sim.js';

type TC = Awaited<ReturnType<typeof freshController>>;

const SECRET = 'Imported-Secret-9';

const rack = () => ({
  machines: [
    {
      name: 'rack-a1',
      serial: 'SN-A1',
      uuid: '4c4c4544-0031-3410-8051-b2c04f4a3132',
      assetTag: 'ASSET-A1',
      macs: ['52:54:00:AA:00:01', '52-54-00-aa-00-02'],
      tags: { rack: 'a', row: 3 },
      bmc: { driver: 'ipmi', address: '10.0.9.1', username: 'root', password: SECRET },
    },
    { name: 'rack-a2', serial: 'SN-A2', tags: { rack: 'a' }, bmc: { driver: 'redfish', address: 'https://10.0.9.2', username: 'root', password: SECRET, ref: '/redfish/v1/Systems/1' } },
    { macs: ['52:54:00:aa:00:03'], tags: { rack: 'b' } },
  ],
});

describe.each(backends)('machine import on $name', (backend) => {
  let t: TC;
  let run: ReturnType<typeof inProcessCli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-import-'));
  const file = (name: string, doc: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, name.endsWith('.json') ? JSON.stringify(doc, null, 2) : stringify(doc));
    return path;
  };
  const machines = async () => (await t.api('GET', '/api/v1/machines')).json().items as Array<{ name: string; identity: Record<string, unknown>; tags: Record<string, string>; provider: { applianceId: string | null; ref: string | null } }>;
  const eventCount = async () => Number((await t.controller.services.store.db.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    t = await freshController(backend, { providers: { jobDeadline: '20s', timeout: '8s', syncInterval: '0s' } });
    t.controller.power.start();
    const url = await t.controller.listen();
    run = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  });
  afterAll(async () => t?.close());

  it('--dry-run prints the plan and changes nothing', async () => {
    const r = await run('machine', 'import', file('rack.yaml', rack()), '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('machines[0] rack-a1 create  rack-a1-bmc (create)');
    expect(r.stdout).toContain('machines[2] (new name) create  \n');
    expect(r.stdout).toMatch(/dry run: 3 to create, 0 to update, 0 unchanged; nothing was changed\n$/);
    expect(r.stdout).not.toContain(SECRET);
    expect(await machines()).toEqual([]);
    expect((await t.api('GET', '/api/v1/appliances')).json().items).toEqual([]);
  });

  it('creates machines with identity and tags, BMCs as appliances with sealed passwords', async () => {
    const r = await run('machine', 'import', join(dir, 'rack.yaml'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 created, 0 updated, 0 unchanged\n$/);
    const list = await machines();
    expect(list).toHaveLength(3);
    const a1 = list.find((m) => m.name === 'rack-a1')!;
    expect(a1.identity).toMatchObject({ serial: 'SN-A1', systemUuid: '4c4c4544-0031-3410-8051-b2c04f4a3132', assetTag: 'ASSET-A1', macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'] });
    expect(a1.tags).toEqual({ rack: 'a', row: '3' });
    const appliances = (await t.api('GET', '/api/v1/appliances')).json().items as Array<{ id: string; name: string; type: string; address: string; hasPassword: boolean }>;
    expect(appliances.map((a) => [a.name, a.type, a.address, a.hasPassword])).toEqual([
      ['rack-a1-bmc', 'ipmi', '10.0.9.1', true],
      ['rack-a2-bmc', 'redfish', 'https://10.0.9.2', true],
    ]);
    expect(a1.provider).toEqual({ applianceId: appliances[0]!.id, ref: 'bmc' });
    expect(list.find((m) => m.name === 'rack-a2')!.provider.ref).toBe('/redfish/v1/Systems/1');
    const unnamed = list.find((m) => m.tags['rack'] === 'b')!;
    expect(unnamed.identity['macs']).toEqual(['52:54:00:aa:00:03']);
    expect(unnamed.provider.applianceId).toBeNull();
    const rows = await t.controller.services.store.db.selectFrom('appliances').select('password_enc').execute();
    for (const row of rows) expect(row.password_enc).not.toContain(SECRET);
    expect(JSON.stringify(appliances)).not.toContain(SECRET);
    const events = (await t.api('GET', '/api/v1/machines/rack-a1/events')).json().items;
    expect(events.map((e: { action: string; reason: string }) => [e.action, e.reason])).toEqual([['enroll', 'imported (machines document, machines[0])']]);
  });

  it('a second import changes nothing and says so', async () => {
    const before = await eventCount();
    const r = await run('machine', 'import', join(dir, 'rack.yaml'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`nothing to change: 3 machine(s) already as ${join(dir, 'rack.yaml')} says\n`);
    expect(await eventCount()).toBe(before);
    const events = (await t.api('GET', '/api/v1/appliances/rack-a1-bmc/events')).json().items;
    expect(events).toEqual([]);
  });

  it('an edited document updates what changed: fields named, values (passwords) never', async () => {
    const doc = rack();
    doc.machines[0]!.tags = { rack: 'a', row: 4 };
    doc.machines[0]!.macs!.push('52:54:00:aa:00:09');
    doc.machines[1]!.bmc!.password = 'Rotated-Secret-7';
    const r = await run('machine', 'import', file('rack-2.yaml', doc), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ format: 'plinth', dryRun: false, created: 0, updated: 1, unchanged: 2 });
    expect(out.items[0]).toMatchObject({ machine: 'rack-a1', action: 'update', changes: ['macs', 'tags.row'] });
    expect(out.items[1]).toMatchObject({ machine: 'rack-a2', action: 'unchanged', appliance: { name: 'rack-a2-bmc', action: 'update', changes: ['password'] } });
    expect(r.stdout).not.toContain('Rotated-Secret-7');
    const a1 = (await t.api('GET', '/api/v1/machines/rack-a1')).json();
    expect(a1.tags.row).toBe('4');
    expect(a1.identity.macs).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:09']);
    const events = (await t.api('GET', '/api/v1/appliances/rack-a2-bmc/events')).json().items;
    expect(events.map((e: { action: string; details: unknown }) => [e.action, e.details])).toEqual([['appliance-updated', { fields: ['password'], from: 'unknown', to: 'unknown' }]]);
    expect(JSON.stringify(events)).not.toContain('Rotated-Secret-7');
  });

  it('bad entries: every problem named by index and field, one line, nothing imported', async () => {
    const doc = {
      machines: [
        { name: 'fine-1', serial: 'SN-F1' },
        { name: 'Bad Name', uuid: 'not-a-uuid' },
        { serial: 'SN-F1' },
        { tags: { rack: 'z' } },
        { name: 'fine-2', bmc: { driver: 'smoke-signals', address: 'x' }, macs: ['zz:zz'] },
        { name: 'fine-3', bmc: { driver: 'ipmi', address: 'bmc host', pasword: 'typo' } },
      ],
    };
    const before = await eventCount();
    const r = await run('machine', 'import', file('bad.yaml', doc));
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    for (const field of [
      "machines[1].name: 'Bad Name' is not a hostname label",
      "machines[1].uuid: 'not-a-uuid' is not a usable system UUID",
      "machines[2].serial: 'SN-F1' is also machines[0]'s",
      'machines[3].name: an entry needs a name or an identity',
      "machines[4].macs[0]: 'zz:zz' is not a MAC address",
      "machines[4].bmc.driver: 'smoke-signals' is not one of",
      'machines[5].bmc.pasword: is not a field of an entry',
    ]) {
      expect(r.stderr).toContain(field);
    }
    // Read whole, the document's address problem shows once the entry is otherwise right.
    const api = await t.api('POST', '/api/v1/machines/import', { document: { machines: [{ name: 'fine-3', bmc: { driver: 'ipmi', address: 'bmc host' } }] } });
    expect(api.statusCode).toBe(400);
    expect(api.json().error).toMatchObject({ code: 'validation', details: { field: 'machines[0].bmc.address' } });
    expect(api.json().error.message).toBe("machines[0].bmc.address: 'bmc host' is not host[:port]");
    expect(await eventCount()).toBe(before);
    expect((await machines()).map((m) => m.name)).not.toContain('fine-1');
  });

  it('an entry naming two machines (name of one, serial of another) is refused, nothing half-imported', async () => {
    const r = await t.api('POST', '/api/v1/machines/import', { document: { machines: [{ name: 'new-one', serial: 'SN-N1' }, { name: 'rack-a1', serial: 'SN-A2' }] } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toBe("machines[1].serial: 'SN-A2' is machine rack-a2's, but name 'rack-a1' is machine rack-a1's: an entry must name one machine");
    expect((await t.api('GET', '/api/v1/machines/new-one')).statusCode).toBe(404);
  });

  it('hostile documents: not a mapping, neither form, not a list, an unknown appliance', async () => {
    for (const [document, message] of [
      ['just a string', /^document: must be a mapping/],
      [{ hosts: [] }, /^document: has neither machines: \(Plinth\) nor nodes: \(TripleO/],
      [{ machines: { a: 1 } }, /^machines: must be a list$/],
      [{ machines: [{ name: 'x1', appliance: 'nowhere', ref: 'y' }] }, /^machines\[0\]\.appliance: no appliance is named 'nowhere'/],
      [{ machines: [{ name: 'x1', appliance: 'rack-a2-bmc', ref: 'https://elsewhere.example/redfish/v1/Systems/1' }] }, /^machines\[0\]\.ref: .* is not on the appliance's endpoint/],
    ] as const) {
      const r = await t.api('POST', '/api/v1/machines/import', { document });
      expect(r.statusCode, JSON.stringify(document)).toBe(400);
      expect(r.json().error.message).toMatch(message);
    }
    const missing = await run('machine', 'import', join(dir, 'absent.yaml'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/absent\.yaml: cannot read: ENOENT\n$/);
    writeFileSync(join(dir, 'broken.yaml'), 'machines:\n  - name: a\n   serial: x\n');
    const broken = await run('machine', 'import', join(dir, 'broken.yaml'));
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/broken\.yaml:3:\d+: /);
  });

  it('an operator token may not import (the document carries BMC credentials)', async () => {
    const tok = (await t.api('POST', '/api/v1/tokens', { name: 'op-import', role: 'operator' })).json().token as string;
    const r = await t.api('POST', '/api/v1/machines/import', { document: { machines: [{ name: 'op-1' }] } }, tok);
    expect(r.statusCode).toBe(403);
  });

  describe('TripleO nodes.json with IPMI entries on ipmi_sim', () => {
    let bmcs: IpmiSimPeer[];
    beforeAll(async () => {
      bmcs = await Promise.all([startIpmiSim({ password: 'Node0-pw' }), startIpmiSim({ password: 'Node1-pw', powerOn: true })]);
    });
    afterAll(async () => Promise.all((bmcs ?? []).map((b) => b.close())));

    const nodes = () => ({
      nodes: bmcs.map((b, i) => ({
        name: `node-${i}`,
        pm_type: i === 0 ? 'ipmi' : 'pxe_ipmitool',
        pm_addr: b.host,
        pm_port: String(b.port),
        pm_user: b.username,
        pm_password: b.password,
        mac: [`52:54:00:bb:00:0${i}`],
        cpu: '4',
        memory: '6144',
        disk: '40',
        arch: 'x86_64',
        capabilities: 'profile:compute,boot_option:local',
      })),
    });

    it('enlists machines whose BMCs answer: power read and switched through the imported appliances', async () => {
      const r = await run('machine', 'import', file('nodes.json', nodes()));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/2 created, 0 updated, 0 unchanged\n$/);
      const n0 = (await t.api('GET', '/api/v1/machines/node-0')).json();
      expect(n0.tags).toEqual({ cpus: '4', memory_mb: '6144', local_gb: '40', cpu_arch: 'x86_64', 'capabilities.profile': 'compute', 'capabilities.boot_option': 'local' });
      expect(n0.identity.macs).toEqual(['52:54:00:bb:00:00']);
      expect(n0.provider.ref).toBe('bmc');
      const a0 = (await t.api('GET', '/api/v1/appliances/node-0-bmc')).json();
      expect(a0).toMatchObject({ type: 'ipmi', address: bmcs[0]!.address, username: bmcs[0]!.username, hasPassword: true });

      const s0 = await run('machine', 'power', 'node-0', 'status');
      expect(s0.code, s0.stderr).toBe(0);
      expect(s0.stdout).toBe('node-0: off\n');
      const s1 = await run('machine', 'power', 'node-1', 'status');
      expect(s1.stdout).toBe('node-1: on\n');
      const on = await run('machine', 'power', 'node-0', 'on');
      expect(on.code, on.stderr).toBe(0);
      expect(bmcs[0]!.power()).toBe('on');
      expect(bmcs[0]!.calls()).toContain('set power 1');

      const again = await run('machine', 'import', join(dir, 'nodes.json'));
      expect(again.stdout).toBe(`nothing to change: 2 machine(s) already as ${join(dir, 'nodes.json')} says\n`);
    });

    it('refuses an unsupported pm_type and a pm_type without pm_addr, naming the node', async () => {
      const r = await t.api('POST', '/api/v1/machines/import', { document: { nodes: [{ name: 'n-x', pm_type: 'fake_pxe', pm_addr: '10.0.0.1' }, { name: 'n-y', pm_type: 'ipmi', mac: ['52:54:00:bb:00:77'] }] } });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.message).toMatch(/^nodes\[0\]\.pm_type: 'fake_pxe' is not supported \(ipmi, /);
      expect(r.json().error.message).toContain('nodes[1].pm_addr: is required with pm_type');
    });
  });
});
