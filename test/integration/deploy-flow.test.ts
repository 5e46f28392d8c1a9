import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot, type InjectOptions } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { FakeClock } from '../../src/core/clock.js';
import { CALLBACK_PLACEHOLDER } from '../../src/deploy/service.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMy9S4+b4Qk4nXDEPLOYmT4Vf6hFb8mJbA0hPcLsGKc3 ops@example';

/**
 * The deploy flow over HTTP as a machine drives it — boot scripts, agent hello, image
 * download with Range, step reports, the switch to local disk, the installed OS reporting in
 * — with the image store and templates real; only the machine itself is simulated.
 */
describe.each(backends)('deployment on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-07-01T10:00:00.000Z');
  const dir = mkdtempSync(join(tmpdir(), 'plinth-deploy-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const image = randomBytes(3 * 2 ** 20);
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { clock, installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
  });
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const machine = async (key: string) => (await t.api('GET', `/api/v1/machines/${key}`)).json();
  const bootScript = async (mac: string) => (await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body;
  const tokenIn = (script: string) => /plinth\.token=(\S+)/.exec(script)![1]!;

  /** A machine that network-booted and was inspected: 8 GiB disk, one NIC. */
  async function inspected(name: string, mac: string, diskBytes = 8 * 2 ** 30) {
    const token = tokenIn(await bootScript(mac));
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', diskBytes]] }) });
    expect(r.statusCode, r.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
    return (await machine(name));
  }

  it('stores uploaded images by checksum, converting qcow2 to raw, and keeps nothing from a bad upload', async () => {
    const up = await inject('POST', `/api/v1/images?name=tiny&sha256=${sha(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
    expect(up.json()).toMatchObject({ name: 'tiny', kind: 'disk', sourceFormat: 'raw', sizeBytes: image.length, sha256: sha(image) });

    const raw = join(dir, 'q.raw');
    writeFileSync(raw, image);
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'q.qcow2')]);
    const qcow = readFileSync(join(dir, 'q.qcow2'));
    const q = await inject('POST', `/api/v1/images?name=tiny-q&sha256=${sha(qcow)}`, { token: t.adminToken, body: qcow, headers: { 'content-type': 'application/octet-stream' } });
    expect(q.statusCode, q.body).toBe(201);
    expect(q.json()).toMatchObject({ sourceFormat: 'qcow2', sizeBytes: image.length, sha256: sha(image) });

    const before = await snapshot(t.controller);
    const files = readdirSync(join(t.config.dataDir, 'images')).sort();
    const bad = await inject('POST', `/api/v1/images?name=bad&sha256=${'0'.repeat(64)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.message).toMatch(/^sha256: the upload's checksum is [0-9a-f]{64}, not 0{64}/);
    expect(readdirSync(join(t.config.dataDir, 'images')).sort()).toEqual(files);
    expect(await snapshot(t.controller)).toBe(before);
    const dup = await inject('POST', '/api/v1/images?name=tiny', { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(dup.statusCode).toBe(409);
    expect((await t.api('GET', '/api/v1/images')).json().items.map((i: any) => i.name)).toEqual(['tiny', 'tiny-q']);
  });

  let deployRun = '';
  let firstCallback = '';
  it('deploys: renders the seed, boots the installer, serves the image with Range, then the installed OS reports in', async () => {
    await inspected('web-1', '52:54:00:de:00:01');
    const r = await t.api('POST', '/api/v1/machines/web-1/actions/deploy', { image: 'tiny', sshKeys: [KEY] });
    expect(r.statusCode, r.body).toBe(200);
    deployRun = r.json().run.id;
    expect(r.json().machine.state).toBe('deploying');
    const artifacts = (await t.api('GET', `/api/v1/runs/${deployRun}/artifacts`)).json().items.map((a: any) => a.name);
    expect(artifacts).toEqual(['cloud-init/meta-data', 'cloud-init/network-config', 'cloud-init/user-data']);
    const userData = (await t.api('GET', `/api/v1/runs/${deployRun}/artifacts/cloud-init%2Fuser-data`)).body;
    expect(userData).toMatch(/^#cloud-config/);
    expect(userData).toContain('hostname: "web-1"');
    expect(userData).toContain(KEY);
    // Stored artifacts carry a placeholder; the run's callback secret reaches the machine only.
    expect(userData).toContain(CALLBACK_PLACEHOLDER);
    expect(userData.replaceAll(CALLBACK_PLACEHOLDER, '')).not.toMatch(/plcb_/);

    const script = await bootScript('52:54:00:de:00:01');
    expect(script).toContain('booting the installer (deploy)');
    const token = tokenIn(script);
    const hello = (await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).json();
    expect(hello.run.params.image).toEqual({
      url: '/agent/v1/images/tiny',
      sha256: sha(image),
      sizeBytes: image.length,
      format: 'raw',
      index: { url: '/agent/v1/images/tiny/chunks', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
    const callback = /plcb_[A-Za-z0-9_-]+/.exec(hello.run.params.seed.userData)![0];
    expect(callback).not.toBe(CALLBACK_PLACEHOLDER);
    expect(hello.run.params.seed.userData).toBe(userData.replaceAll(CALLBACK_PLACEHOLDER, callback));
    const m = await machine('web-1');
    expect(m.state).toBe('deploy-wait');
    // 3 MiB at the assumed 20 MB/s is nothing: the configured hour stands.
    expect(m.stateDeadline).toBe('2026-07-01T11:00:00.000Z');

    const part = await inject('GET', '/agent/v1/images/tiny', { token, headers: { range: 'bytes=1048576-' } });
    expect(part.statusCode).toBe(206);
    expect(Buffer.compare(part.rawPayload, image.subarray(2 ** 20))).toBe(0);
    expect((await inject('GET', '/agent/v1/images/tiny-q', { token })).statusCode).toBe(403);

    clock.advance(10 * 60e3);
    const beat = await inject('POST', '/agent/v1/heartbeat', { token, body: { step: 'write-image', progress: { bytesWritten: 2 ** 20, totalBytes: image.length, bytesPerSecond: 2000 } } });
    expect(beat.statusCode, beat.body).toBe(200);
    // 2 MiB left at 2 kB/s, twice, plus the first boot: the deadline follows the observed throughput.
    expect((await machine('web-1')).stateDeadline).toBe(new Date(Date.parse('2026-07-01T10:10:00.000Z') + 2 * 2 ** 20 + 20 * 60e3).toISOString());

    for (const step of ['select-disk', 'write-image', 'grow-root', 'configure']) {
      for (const status of ['running', 'succeeded']) {
        const s = await inject('POST', `/agent/v1/steps/${step}`, { token, body: { status, message: `${step} ${status}`, details: { durationMs: 5 } } });
        expect(s.statusCode, s.body).toBe(200);
      }
    }
    expect((await inject('POST', '/agent/v1/boot-local', { token, body: {} })).json()).toEqual({ next: 'reboot' });
    const local = await bootScript('52:54:00:de:00:01');
    expect(local).toContain('its image is written; booting the installed OS');
    expect(local).toMatch(/\nexit\n$/);

    firstCallback = callback;
    const reported = await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot', source: 'cloud-init' } });
    expect(reported.statusCode, reported.body).toBe(200);
    const done = await machine('web-1');
    expect(done).toMatchObject({ state: 'deployed', deployment: { image: 'tiny', address: '10.0.2.15' } });
    const run = (await t.api('GET', `/api/v1/runs/${deployRun}`)).json();
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['prepare', 'succeeded'],
      ['power-on', 'succeeded'],
      ['boot-installer', 'succeeded'],
      ['agent-hello', 'succeeded'],
      ['select-disk', 'succeeded'],
      ['write-image', 'succeeded'],
      ['grow-root', 'succeeded'],
      ['configure', 'succeeded'],
      ['reboot', 'succeeded'],
      ['first-boot', 'succeeded'],
    ]);
    const stages = (await t.api('GET', '/api/v1/machines/web-1/trace?attempts=1')).json().attempts[0].stages.map((s: any) => s.stage);
    expect(stages).toEqual(['machine-script', 'local-boot', 'installed-os']);
    expect((await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot' } })).statusCode).toBe(401);
    expect((await t.api('DELETE', '/api/v1/images/tiny')).statusCode).toBe(409);
  });

  it('redeploys with --reuse-run: byte-identical artifacts, with a callback secret of its own', async () => {
    const old = (await t.api('GET', `/api/v1/runs/${deployRun}/artifacts`)).json().items;
    const r = await t.api('POST', '/api/v1/machines/web-1/actions/redeploy', { reuseRun: deployRun });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().run.reusedFrom).toBe(deployRun);
    const now = (await t.api('GET', `/api/v1/runs/${r.json().run.id}/artifacts`)).json().items;
    expect(now.map((a: any) => [a.name, a.sha256])).toEqual(old.map((a: any) => [a.name, a.sha256]));
    const token = tokenIn(await bootScript('52:54:00:de:00:01'));
    const hello = (await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).json();
    const callback = /plcb_[A-Za-z0-9_-]+/.exec(hello.run.params.seed.userData)![0];
    expect(callback).not.toBe(firstCallback);
    expect((await inject('POST', '/agent/v1/installed', { token: firstCallback, body: { event: 'first-boot' } })).statusCode).toBe(401);
    expect((await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot' } })).statusCode).toBe(200);
    expect((await machine('web-1')).state).toBe('deployed');
    const bad = await t.api('POST', '/api/v1/machines/web-1/actions/redeploy', { reuseRun: 'nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toBe("reuseRun: run 'nope' not found");
  });

  it('fails early, before anything is written, for an unknown image, an image too large, a template error', async () => {
    await inspected('small-1', '52:54:00:de:00:02', 2 * 2 ** 20);
    const tooBig = (await t.api('POST', '/api/v1/machines/small-1/actions/deploy', { image: 'tiny' })).json();
    expect(tooBig.machine.state).toBe('deploy-failed');
    expect(tooBig.machine.lastError).toMatchObject({ code: 'disk', stage: 'prepare', message: 'image tiny (0.0 GiB) is larger than every disk (largest: vda, 0.0 GiB)' });
    const unknown = (await t.api('POST', '/api/v1/machines/small-1/actions/retry', { image: 'no-such-image' })).json();
    expect(unknown.machine.lastError).toMatchObject({ code: 'image', message: "image 'no-such-image' is not in the image store" });
    // No power job, no artifact: nothing reached the machine.
    const jobs = await t.controller.services.store.db.selectFrom('provider_jobs').selectAll().execute();
    expect(jobs).toEqual([]);
    expect((await t.api('GET', `/api/v1/runs/${unknown.machine.currentRunId ?? (await t.api('GET', '/api/v1/machines/small-1/runs')).json().items[0].id}/artifacts`)).json().items).toEqual([]);

    await inspected('tmpl-1', '52:54:00:de:00:03');
    const bad = await t.api('PUT', '/api/v1/templates/cloud-init/hostname?scope=machine&owner=tmpl-1', { body: 'hostname: {{ vars.nosuch }}\n' });
    expect(bad.statusCode, bad.body).toBe(200);
    const failed = (await t.api('POST', '/api/v1/machines/tmpl-1/actions/deploy', { image: 'tiny' })).json();
    expect(failed.machine.lastError.code).toBe('template');
    expect(failed.machine.lastError.message).toMatch(/^cloud-init\/hostname:1:\d+: undefined variable: vars\.nosuch/);
    const syntax = await t.api('PUT', '/api/v1/templates/cloud-init/hostname?scope=site', { body: 'hostname: {% if %}\n' });
    expect(syntax.statusCode).toBe(400);
    expect(syntax.json().error.message).toMatch(/^cloud-init\/hostname:1:\d+: /);
  });

  it('releases with a quick wipe through the installer, and back to available', async () => {
    const r = await t.api('POST', '/api/v1/machines/web-1/actions/release', {});
    expect(r.json()).toMatchObject({ machine: { state: 'wiping' }, run: { kind: 'wipe', params: { wipe: 'quick' } } });
    const token = tokenIn(await bootScript('52:54:00:de:00:01'));
    const hello = (await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).json();
    expect(hello.run.params).toEqual({ mode: 'quick' });
    expect((await inject('POST', '/agent/v1/steps/erase', { token, body: { status: 'running' } })).json()).toEqual({});
    expect((await inject('POST', '/agent/v1/steps/erase', { token, body: { status: 'succeeded', message: 'vda: quick' } })).json()).toEqual({ next: 'poweroff' });
    const m = await machine('web-1');
    expect(m).toMatchObject({ state: 'available', deployment: { image: null, address: null } });
  });

  it('deploys with the Debian installer: the iPXE script and the preseed come from the run', async () => {
    await inspected('native-1', '52:54:00:de:00:04');
    const r = await t.api('POST', '/api/v1/machines/native-1/actions/deploy', { method: 'preseed' });
    expect(r.statusCode, r.body).toBe(200);
    const runId = r.json().run.id;
    const names = (await t.api('GET', `/api/v1/runs/${runId}/artifacts`)).json().items.map((a: any) => a.name);
    expect(names).toEqual(['ipxe/debian-installer', 'preseed/preseed.cfg']);
    const script = await bootScript('52:54:00:de:00:04');
    expect(script).toContain('boots the Debian installer');
    const preseedUrl = /url=(\S+)/.exec(script)![1]!;
    expect(preseedUrl).toMatch(/^http:\/\/10\.0\.2\.2:7708\/boot\/artifacts\/plcb_[A-Za-z0-9_-]+\/preseed\/preseed\.cfg$/);
    const preseed = await inject('GET', new URL(preseedUrl).pathname);
    expect(preseed.statusCode).toBe(200);
    const callback = /artifacts\/(plcb_[A-Za-z0-9_-]+)\//.exec(preseedUrl)![1]!;
    expect(callback).not.toBe(CALLBACK_PLACEHOLDER);
    expect(preseed.body).toBe((await t.api('GET', `/api/v1/runs/${runId}/artifacts/preseed%2Fpreseed.cfg`)).body.replaceAll(CALLBACK_PLACEHOLDER, callback));
    expect((await machine('native-1')).state).toBe('deploy-wait');
    const stages = (await t.api('GET', '/api/v1/machines/native-1/trace?attempts=1')).json().attempts[0].stages.map((s: any) => [s.stage, s.detail?.name]);
    expect(stages).toEqual([['machine-script', undefined], ['artifact', 'preseed/preseed.cfg']]);
    // The script went out once: the run is claimed, a second boot request gets no secret.
    expect(await bootScript('52:54:00:de:00:04')).not.toMatch(/plcb_/);
    expect((await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'installed', source: 'preseed' } })).statusCode).toBe(200);
    expect((await machine('native-1')).state).toBe('deployed');
    const images = t.controller.services.images;
    expect(existsSync(images.path(await images.get('tiny')))).toBe(true);
  });
});
