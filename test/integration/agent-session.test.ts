import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot, type InjectOptions } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The agent's session and the protocol it speaks: a report either changes everything it
 * stands for (steps, trace, the machine's state) or nothing, and a root device hint is held
 * to one rule set by the API, profiles and the agent alike.
 */
describe.each(backends)('agent session on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-07-01T10:00:00.000Z');
  const image = randomBytes(2 ** 20);
  const dir = mkdtempSync(join(tmpdir(), 'plinth-session-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { clock, installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    const up = await inject('POST', `/api/v1/images?name=tiny&sha256=${sha(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
  });
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const db = () => t.controller.services.store.db;
  const tokenFor = async (mac: string) => /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;
  /** Everything a report could change: machines, runs and their steps, events, the boot trace. */
  const state = async () => JSON.stringify([await snapshot(t.controller), await db().selectFrom('boot_trace').selectAll().execute()]);

  /** A machine that network-booted and was inspected, named `name`. */
  async function inspected(name: string, mac: string) {
    const token = await tokenFor(mac);
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] }) });
    expect(r.statusCode, r.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
  }

  /** A ticket claimed by a harmless first call, so that what follows is the only change. */
  async function claimed(mac: string): Promise<string> {
    const token = await tokenFor(mac);
    expect((await inject('POST', '/agent/v1/log', { token, body: { lines: [] } })).statusCode).toBe(200);
    return token;
  }

  it('refuses a root device hint the agent could not use, before anything is written (one rule set)', async () => {
    await inspected('hints-1', '52:54:00:5e:00:01');
    const before = await snapshot(t.controller);
    for (const [hints, field] of [
      [{ serial: '' }, 'serial'],
      [{ model: '   ' }, 'model'],
      [{ sizeGiB: 0 }, 'sizeGiB'],
      [{ size: 10 }, 'size'],
    ] as const) {
      const r = await t.api('POST', '/api/v1/machines/hints-1/actions/deploy', { image: 'tiny', rootDeviceHints: hints });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.body).toContain(field);
    }
    const profile = await t.api('POST', '/api/v1/profiles/apply', { profiles: [{ name: 'blank-hint', spec: [], deploy: { rootDeviceHints: { vendor: ' ' } } }] });
    expect(profile.statusCode, profile.body).toBe(400);
    expect(profile.body).toContain('deploy.rootDeviceHints.vendor');
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('hands the agent the parameters of its run kind, checked by the protocol schema', async () => {
    const r = await t.api('POST', '/api/v1/machines/hints-1/actions/deploy', { image: 'tiny', rootDeviceHints: { name: '/dev/vda', minSizeBytes: 1024 } });
    expect(r.statusCode, r.body).toBe(200);
    const hello = await inject('POST', '/agent/v1/hello', { token: await tokenFor('52:54:00:5e:00:01'), body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    expect(hello.json().run).toMatchObject({ kind: 'deploy', params: { image: { sha256: sha(image), sizeBytes: image.length, format: 'raw' }, rootDeviceHints: { name: '/dev/vda', minSizeBytes: 1024 } } });
    expect(Object.keys(hello.json().run.params).sort()).toEqual(['image', 'rootDeviceHints', 'seed']);
  });

  it('a hello that cannot hand out its parameters changes nothing: no state, no steps, no trace', async () => {
    await inspected('hello-1', '52:54:00:5e:00:02');
    const r = await t.api('POST', '/api/v1/machines/hello-1/actions/deploy', { image: 'tiny' });
    expect(r.statusCode, r.body).toBe(200);
    const runId = r.json().run.id;
    // The run's seed is gone (as if its artifacts were lost): the agent cannot be told what to write.
    await db().deleteFrom('run_artifacts').where('run_id', '=', runId).where('name', '=', 'cloud-init/user-data').execute();
    const token = await claimed('52:54:00:5e:00:02');
    const before = await state();
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode).toBe(404);
    expect(await state()).toBe(before);
    expect((await t.api('GET', '/api/v1/machines/hello-1')).json().state).toBe('deploying');
  });

  it("a wipe's last step whose transition is refused changes nothing: the step stays as it was", async () => {
    await inspected('wipe-1', '52:54:00:5e:00:03');
    expect((await t.api('POST', '/api/v1/machines/wipe-1/actions/wipe', { wipe: 'quick' })).statusCode).toBe(200);
    const token = await tokenFor('52:54:00:5e:00:03');
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    expect((await inject('POST', '/agent/v1/steps/erase', { token, body: { status: 'running' } })).statusCode).toBe(200);
    // An operator puts the machine in maintenance: the agent may no longer move it.
    expect((await t.api('PATCH', '/api/v1/machines/wipe-1', { maintenance: true, maintenanceReason: 'hands on' })).statusCode).toBe(200);
    const before = await state();
    const r = await inject('POST', '/agent/v1/steps/erase', { token, body: { status: 'succeeded', message: 'vda: quick' } });
    expect(r.statusCode, r.body).toBe(409);
    expect(await state()).toBe(before);
    const run = (await t.api('GET', '/api/v1/machines/wipe-1')).json();
    expect(run.state).toBe('wipe-wait');
  });
});
