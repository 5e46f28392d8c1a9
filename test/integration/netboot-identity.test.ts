import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, placeholderInstaller } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { startPyghmiBmc, type PyghmiBmcPeer } from '../support/peers/pyghmi-bmc.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * BMC-only machines and their first network boot, against real BMCs (pyghmi, the base of
 * VirtualBMC): a BMC with no System GUID and no FRU enlists a machine with no identity; the
 * boot request of what it powers on must become that machine, not a second one. And a GUID
 * that ipmitool decodes in the other byte order than SMBIOS is the same machine.
 */
describe.each(backends)('network boots of machines enlisted from a BMC on $name', (backend) => {
  let t: TC;
  const peers: PyghmiBmcPeer[] = [];
  let n = 0;
  // The installer's files are only handed out by URL here; their content does not matter.
  beforeAll(async () => {
    const installer = placeholderInstaller('plinth-netboot-');
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708', providers: { jobDeadline: '30s', timeout: '10s' } }, { installer });
    t.controller.power.start();
  });
  afterAll(async () => {
    await t?.close();
    for (const p of peers) await p.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await t.api(method, path, body);
    expect(r.statusCode, `${method} ${path}: ${r.body}`).toBeLessThan(300);
    return r.json();
  };
  const machines = async () => (await api('GET', '/api/v1/machines')).items as any[];
  const events = async (name: string) => ((await api('GET', `/api/v1/machines/${name}/events`)).items as any[]).map((e) => e.action as string);

  /** A pyghmi BMC registered as an appliance and enlisted: the machine behind it. */
  async function enlistBmc(guid?: string) {
    const peer = await startPyghmiBmc(guid ? { guid } : {});
    peers.push(peer);
    const name = `bmc-${++n}`;
    await api('POST', '/api/v1/appliances', { name, type: 'ipmi', address: peer.address, username: peer.username, password: peer.password });
    const [entry] = (await api('POST', `/api/v1/appliances/${name}/enlist`, {})).items;
    expect(entry.outcome).toBe('created');
    return { peer, appliance: name, machine: entry.machine.name as string, identity: entry.machine.identity };
  }

  /** Starts a run (inspect by default) and waits until the appliance reports the machine on (the boot job's reading). */
  async function powerOnToNetboot(name: string, action: 'inspect' | 'wipe' = 'inspect') {
    const state = action === 'inspect' ? 'inspecting' : 'wiping';
    await api('POST', `/api/v1/machines/${name}/actions/${action}`, {});
    let m = await api('GET', `/api/v1/machines/${name}`);
    while (m.power.state !== 'on' && m.state === state) {
      await new Promise((r) => setTimeout(r, 100));
      m = await api('GET', `/api/v1/machines/${name}`);
    }
    expect(m).toMatchObject({ state, power: { state: 'on', source: 'ipmi' } });
  }

  /** The request iPXE sends when the machine network-boots; returns the script. */
  const netboot = async (q: Record<string, string>) => (await t.inject('GET', `/boot/machine.ipxe?${new URLSearchParams(q)}`)).body;
  const tokenOf = (script: string) => /plinth\.token=(\S+)/.exec(script)?.[1];

  it('a BMC without GUID or FRU: its first network boot is the enlisted machine, which learns its UUID and MAC from the facts', async () => {
    const { peer, machine, identity } = await enlistBmc();
    expect(identity).toEqual({ systemUuid: null, serial: null, manufacturer: null, productName: null, assetTag: null, macs: [] });
    await powerOnToNetboot(machine);
    expect(peer.calls()).toEqual(['boot network', 'power on']);

    const uuid = '5a1c0e2d-3b4f-4a6e-9d8c-7b6a5f4e3d21';
    const mac = '52:54:00:c0:12:01';
    const script = await netboot({ uuid, mac });
    expect(script).toContain(machine);
    // An iPXE retry of the same request is the same machine.
    const again = await netboot({ uuid, mac });
    expect(again).toContain(machine);
    const token = tokenOf(again)!;
    expect((await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const facts = { ...makeFacts({ uuid, macs: [mac] }), bmc: { ipv4: peer.host, mac: null } };
    const r = await t.inject('POST', '/agent/v1/facts', { token, body: facts });
    expect(r.statusCode, r.body).toBe(200);

    const all = await machines();
    expect(all.map((m) => m.name)).toEqual([machine]);
    expect(await api('GET', `/api/v1/machines/${machine}`)).toMatchObject({ state: 'available', identity: { systemUuid: uuid, macs: [mac] }, identityConflicts: [] });
    const history = await events(machine);
    expect(history).toContain('netboot-correlated');
    expect(history).toContain('netboot-confirmed');
  });

  it('facts that report another BMC address undo the correlation: the run fails and nothing is absorbed', async () => {
    const { machine } = await enlistBmc();
    await powerOnToNetboot(machine);
    const token = tokenOf(await netboot({ mac: '52:54:00:c0:12:02' }))!;
    expect(token).toBeDefined();
    const facts = { ...makeFacts({ macs: ['52:54:00:c0:12:02'] }), bmc: { ipv4: '192.0.2.77', mac: null } };
    const r = await t.inject('POST', '/agent/v1/facts', { token, body: facts });
    expect(r.statusCode).toBe(409);
    expect(JSON.parse(r.body).error.message).toMatch(/reports BMC address 192\.0\.2\.77.*at 127\.0\.0\.1/);
    expect(await api('GET', `/api/v1/machines/${machine}`)).toMatchObject({ state: 'inspect-failed', lastError: { code: 'identity' }, identity: { macs: [] } });
  });

  it('two machines awaiting their network boot: none is guessed, a new machine is enrolled, a conflict names both, and their timeouts switch nothing off', async () => {
    const a = await enlistBmc();
    const b = await enlistBmc();
    await powerOnToNetboot(a.machine);
    await powerOnToNetboot(b.machine);
    const before = new Set((await machines()).map((m) => m.name));

    const script = await netboot({ uuid: '6b2d1f3e-4c5a-4b7f-8e9d-0c1b2a3f4e5d', mac: '52:54:00:c0:12:03' });
    expect(script).not.toContain(a.machine);
    expect(script).not.toContain(b.machine);
    const created = (await machines()).filter((m) => !before.has(m.name));
    expect(created).toHaveLength(1);
    const enrolled = created[0]!.name;
    const conflict = ((await api('GET', `/api/v1/machines/${enrolled}/events`)).items as any[]).find((e) => e.action === 'netboot-ambiguous');
    expect(conflict.details).toEqual({ enrolled, candidates: [a.machine, b.machine].sort() });
    expect(await events(a.machine)).toContain('netboot-ambiguous');
    expect(await events(b.machine)).toContain('netboot-ambiguous');

    // Their deadlines pass: they fail, but what their BMCs power may be the enrolled machine.
    const { db } = t.controller.services.store;
    await db.updateTable('machines').set({ state_deadline: '2000-01-01T00:00:00.000Z' }).where('name', 'in', [a.machine, b.machine]).execute();
    await t.controller.sweeper.sweepOnce();
    for (const x of [a, b]) {
      expect(await api('GET', `/api/v1/machines/${x.machine}`)).toMatchObject({ state: 'inspect-failed', lastError: { code: 'timeout' } });
      expect(await events(x.machine)).toContain('power-off-withheld');
      const id = (await api('GET', `/api/v1/machines/${x.machine}`)).id;
      expect(await db.selectFrom('provider_jobs').select('id').where('machine_id', '=', id).where('kind', '=', 'power').execute()).toEqual([]);
      expect(x.peer.power()).toBe('on');
    }
  });

  it('a machine with no identity awaiting a wipe is never handed an unknown network boot: that boot enrols a new machine', async () => {
    const { machine } = await enlistBmc();
    await powerOnToNetboot(machine, 'wipe');
    const before = new Set((await machines()).map((m) => m.name));
    const script = await netboot({ mac: '52:54:00:c0:12:05' });
    expect(script).not.toContain(machine);
    expect((await machines()).filter((m) => !before.has(m.name))).toHaveLength(1);
    expect(await events(machine)).not.toContain('netboot-correlated');
  });

  it('a System GUID that ipmitool decodes in the other byte order than SMBIOS: the network boot is the enlisted machine', async () => {
    // The BMC sends these 16 bytes; ipmitool reads them in RFC 4122 order, SMBIOS (dmidecode,
    // iPXE) reads its first three fields little-endian.
    const { machine, identity } = await enlistBmc('f0e1d2c3b4a546978899aabbccddeeff');
    expect(identity.systemUuid).toBe('f0e1d2c3-b4a5-4697-8899-aabbccddeeff');
    await powerOnToNetboot(machine);
    const smbios = 'c3d2e1f0-a5b4-9746-8899-aabbccddeeff';
    const token = tokenOf(await netboot({ uuid: smbios, mac: '52:54:00:c0:12:04' }))!;
    expect(token).toBeDefined();
    const r = await t.inject('POST', '/agent/v1/facts', { token, body: makeFacts({ uuid: smbios, macs: ['52:54:00:c0:12:04'] }) });
    expect(r.statusCode, r.body).toBe(200);
    const named = (await machines()).filter((m) => m.identity.macs.includes('52:54:00:c0:12:04') || m.name === machine);
    expect(named.map((m) => m.name)).toEqual([machine]);
    expect(await api('GET', `/api/v1/machines/${machine}`)).toMatchObject({ state: 'available', identity: { systemUuid: 'f0e1d2c3-b4a5-4697-8899-aabbccddeeff', macs: ['52:54:00:c0:12:04'] }, identityConflicts: [] });
  });
});
