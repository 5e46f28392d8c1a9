import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Boot method `vmedia` in the lifecycle, against the Redfish test service: a run's power-on
 * inserts the installer ISO, arms a one-time boot from the CD and powers on, in that order;
 * the run's end ejects it; a machine's own boot method overrides its appliance's.
 */
describe.each(backends)('virtual media boot in the lifecycle on $name', { timeout: 60_000 }, (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  /** What the BMC was told, in order. */
  const seen: string[] = [];
  const ISO = 'http://10.0.2.2:7710/boot/installer.iso';
  beforeAll(async () => {
    peer = await startRedfishPeer({
      username: 'root',
      password: 'calvin',
      powerState: 'Off',
      onPowerChange: (_id, state, d) => seen.push(`power ${state} ${d.bootTarget}`),
      onBootOverride: (_id, b) => seen.push(`boot ${b.target} ${b.enabled}`),
      onVirtualMedia: (_slot, image) => seen.push(image ? `insert ${image}` : 'eject'),
    });
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7710', providers: { jobDeadline: '20s', timeout: '5s' } });
    t.controller.power.start();
  });
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();
  const until = async <T>(what: string, check: () => Promise<T | undefined>): Promise<T> => {
    for (let i = 0; i < 200; i++) {
      const v = await check();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${what}: not reached; BMC saw ${JSON.stringify(seen)}`);
  };
  const events = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}/events`)).json().items.map((e: { action: string }) => e.action);
  let name = '';

  it('stores the boot method per appliance (default pxe) and per machine, refusing unknown ones naming the field', async () => {
    const bad = await t.api('POST', '/api/v1/appliances', { name: 'bmc-x', type: 'redfish', address: peer.url, bootMethod: 'floppy' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^bootMethod: /);
    const r = await t.api('POST', '/api/v1/appliances', { name: 'bmc-v', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' });
    expect(r.json()).toMatchObject({ bootMethod: 'pxe' });
    const u = await t.api('PATCH', '/api/v1/appliances/bmc-v', { bootMethod: 'vmedia' });
    expect(u.statusCode, u.body).toBe(200);
    // How machines boot says nothing about reaching the BMC: the health is not reset.
    expect(u.json()).toMatchObject({ bootMethod: 'vmedia' });
    const e = (await t.api('POST', '/api/v1/appliances/bmc-v/enlist', {})).json();
    name = e.items[0].machine.name;
    expect(await machine(name)).toMatchObject({ bootMethod: null });
    const badMachine = await t.api('PATCH', `/api/v1/machines/${name}`, { bootMethod: 'usb' });
    expect(badMachine.statusCode).toBe(400);
    expect(badMachine.json().error.message).toMatch(/^bootMethod: /);
  });

  it("powers a run on from the installer ISO: insert, one-time boot from the CD, power on; the run's end ejects it", async () => {
    seen.length = 0;
    const r = await t.api('POST', `/api/v1/machines/${name}/actions/inspect`, {});
    expect(r.statusCode, r.body).toBe(200);
    await until('power-on', async () => (seen.some((s) => s.startsWith('power On')) ? true : undefined));
    // (The mockup's CD held an image: it is ejected first.)
    expect(seen.filter((s) => s !== 'eject')).toEqual([`insert ${ISO}`, 'boot Cd Once', 'power On Cd']);
    expect(peer.insertedImage()).toBe(ISO);
    await until('insert event', async () => ((await events(name)).includes('virtual-media-inserted') ? true : undefined));
    // The run ends (here: the operator aborts it); the CD is emptied.
    await t.api('POST', `/api/v1/machines/${name}/actions/abort`, {});
    await until('eject', async () => (peer.insertedImage() === null ? true : undefined));
    await until('eject event', async () => ((await events(name)).includes('virtual-media-ejected') ? true : undefined));
    expect((await machine(name)).state).toBe('inspect-failed');
  });

  it("a machine's own boot method overrides its appliance's, and null gives it back", async () => {
    const p = await t.api('PATCH', `/api/v1/machines/${name}`, { bootMethod: 'pxe' });
    expect(p.json()).toMatchObject({ bootMethod: 'pxe' });
    expect(await events(name)).toContain('boot-method');
    await t.api('POST', `/api/v1/machines/${name}/actions/abort`, {});
    seen.length = 0;
    await t.api('POST', `/api/v1/machines/${name}/actions/inspect`, {});
    await until('power-on', async () => (seen.some((s) => s.startsWith('power On')) ? true : undefined));
    // (The abort's power-off may land in between.)
    expect(seen.filter((s) => !s.startsWith('power Off'))).toEqual(['boot Pxe Once', 'power On Pxe']);
    expect(peer.insertedImage()).toBeNull();
    const back = await t.api('PATCH', `/api/v1/machines/${name}`, { bootMethod: null });
    expect(back.json()).toMatchObject({ bootMethod: null });
  });

  it('fails the run at the power-on, naming virtual media, when the BMC accepts the ISO and leaves the CD empty', async () => {
    await t.api('POST', `/api/v1/machines/${name}/actions/abort`, {});
    await until('abort', async () => ((await machine(name)).state === 'inspect-failed' ? true : undefined));
    peer.faults.ignoreMedia(true);
    try {
      seen.length = 0;
      const retry = await t.api('POST', `/api/v1/machines/${name}/actions/retry`, {});
      expect(retry.statusCode, retry.body).toBe(200);
      const m = await until('failed', async () => {
        const cur = await machine(name);
        return cur.state === 'inspect-failed' && cur.lastError?.code !== 'aborted' ? cur : undefined;
      });
      expect(m.lastError).toMatchObject({ code: 'virtual-media', stage: 'virtual-media' });
      expect(m.lastError.message).toMatch(/accepted virtual media .* but kept the slot empty/);
      // Never powered on to boot from nothing.
      expect(seen.filter((s) => s.startsWith('power On'))).toEqual([]);
    } finally {
      peer.faults.ignoreMedia(false);
    }
  });
});
