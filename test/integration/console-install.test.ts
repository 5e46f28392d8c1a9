import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, placeholderInstaller, snapshot, type InjectOptions } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { inProcessCli } from '../support/cli.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx automation@test';

/**
 * The installer's console menu as the controller sees it (docs/console.md): what a console
 * hold may install, and the install itself, authorised only by the hold's own ticket, only
 * when an operator turned the console on, only for a machine that was available; every
 * refusal a 4xx that says why and changes nothing. An install is a deploy run like any other,
 * whose ticket is handed over claimed: no boot request gets one for it.
 */
describe.each(backends)('console installs on $name', (backend) => {
  let t: TC;
  const image = randomBytes(2 * 2 ** 20);
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { installer: placeholderInstaller() });
    const up = await t.inject('POST', `/api/v1/images?name=tiny&sha256=${sha(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
  });
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  /** The controller's URL for the CLI: it listens once, when a test first needs it. */
  let listened: Promise<string> | undefined;
  const listening = () => (listened ??= t.controller.listen());
  const machine = async (key: string) => (await t.api('GET', `/api/v1/machines/${key}`)).json();
  const act = (name: string, action: string, body: object = {}) => t.api('POST', `/api/v1/machines/${name}/actions/${action}`, body);
  const bootScript = async (mac: string) => (await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body;
  const tokenIn = (script: string) => /plinth\.token=(\S+)/.exec(script)?.[1] ?? null;
  const install = (token: string, body: object) => inject('POST', '/agent/v1/console/install', { token, body });

  /** A machine that network-booted and was inspected: one 1 GiB disk. */
  async function available(name: string, mac: string) {
    const token = tokenIn(await bootScript(mac))!;
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 2 ** 30]] }) });
    expect(r.statusCode, r.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
  }
  /** A 4 MiB ext4 file system holding a marker, stored as image `part`: the store finds it is a partition image. */
  async function uploadPartitionImage() {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-part-'));
    try {
      mkdirSync(join(dir, 'root'));
      writeFileSync(join(dir, 'root', 'marker'), 'partition image\n');
      execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'part', '-d', join(dir, 'root'), join(dir, 'part.img'), '4M']);
      const body = readFileSync(join(dir, 'part.img'));
      const up = await t.inject('POST', `/api/v1/images?name=part&sha256=${sha(body)}`, { token: t.adminToken, body, headers: { 'content-type': 'application/octet-stream' } });
      expect(up.statusCode, up.body).toBe(201);
      expect(up.json()).toMatchObject({ name: 'part', kind: 'disk', layout: 'partition', sizeBytes: 4 * 2 ** 20 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await t.api('GET', '/api/v1/images/tiny')).json().layout).toBe('whole-disk');
    const cli = inProcessCli({ PLINTH_URL: await listening(), PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    const show = await cli('image', 'show', 'part');
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('\nlayout:    partition\n');
    const offer = (await inject('GET', '/agent/v1/console/images', { token: holdToken })).json().images;
    expect(offer.map((i: any) => [i.name, i.wholeDisk])).toEqual([
      ['part', false],
      ['tiny', true],
    ]);
  }
  /** The hold's installer boots and says hello: its ticket, and the kernel command line it booted with. */
  async function held(mac: string) {
    const script = await bootScript(mac);
    const token = tokenIn(script)!;
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    return { token, script, hello: hello.json() };
  }

  let con1Token = '';
  it('a console hold needs no key, boots with plinth.console=1, and offers the store\'s images', async () => {
    await available('con-1', '52:54:00:c0:00:01');
    const r = await act('con-1', 'boot-installer', { console: true, reason: 'console install' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().run).toMatchObject({ kind: 'installer', params: { authorizedKeys: [], returnTo: 'available', console: true } });
    const { token, script, hello } = await held('52:54:00:c0:00:01');
    expect(script).toContain(' plinth.console=1');
    expect(hello.run).toEqual({ id: r.json().run.id, kind: 'installer', params: { authorizedKeys: [], console: true } });
    con1Token = token;
    const offer = await inject('GET', '/agent/v1/console/images', { token });
    expect(offer.statusCode, offer.body).toBe(200);
    expect(offer.json().images).toEqual([{ name: 'tiny', sha256: sha(image), sizeBytes: image.length, createdAt: expect.any(String), wholeDisk: true, multicast: null }]);
  });

  it('the hold is claimed by its installer: a boot request with its identity gets no ticket', async () => {
    expect(tokenIn(await bootScript('52:54:00:c0:00:01'))).toBeNull();
    const runId = (await machine('con-1')).currentRunId;
    const held = await t.controller.services.store.db.selectFrom('runs').select('token_hash').where('id', '=', runId).executeTakeFirstOrThrow();
    expect(held.token_hash).not.toBeNull();
  });

  let holdToken = '';
  it('refuses bad input, a disk or image it does not have, keep-partitions of a whole-disk image, and a session that is not open', async () => {
    // A fresh hold of another machine, whose ticket we keep.
    await available('con-2', '52:54:00:c0:00:02');
    expect((await act('con-2', 'boot-installer', { console: true })).statusCode).toBe(200);
    holdToken = (await held('52:54:00:c0:00:02')).token;
    await uploadPartitionImage();
    const before = await snapshot(t.controller);
    const cases: [object, number, string][] = [
      [{}, 400, 'image'],
      [{ image: 'tiny', disk: 'vda' }, 400, 'layout'],
      [{ image: 'tiny', disk: '../etc/passwd', layout: 'whole-disk' }, 400, 'disk'],
      [{ image: 'tiny', disk: 'vda', layout: 'everything' }, 400, 'layout'],
      [{ image: 'tiny', disk: 'vda', layout: 'whole-disk', machine: 'con-1' }, 400, 'machine'],
      [{ image: 'x'.repeat(101), disk: 'vda', layout: 'whole-disk' }, 400, 'image'],
      [{ image: 'nope', disk: 'vda', layout: 'whole-disk' }, 400, "image: no disk image 'nope' in the image store"],
      [{ image: 'tiny', disk: 'sdz', layout: 'whole-disk' }, 400, "disk: machine con-2 has no disk 'sdz' in its inspection (vda)"],
      [{ image: 'tiny', disk: 'vda', layout: 'keep-partitions', partition: 'vda2' }, 422, 'layout: keep-partitions writes an image into one partition and keeps the others; image tiny is a whole-disk image'],
      [{ image: 'tiny', disk: 'vda', layout: 'whole-disk', partition: 'vda2' }, 400, 'partition: only applies to keep-partitions'],
      [{ image: 'tiny', disk: 'vda', layout: 'whole-disk', partitionSizeBytes: 2 ** 20 }, 400, 'partitionSizeBytes: only applies to keep-partitions'],
      [{ image: 'part', disk: 'vda', layout: 'whole-disk' }, 422, 'layout: image part is a partition image (one file system, no partition table); whole-disk would leave vda without one'],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions' }, 400, 'partition: keep-partitions needs the partition the image goes into'],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'sda2', partitionSizeBytes: 2 ** 29 }, 400, 'partition: sda2 is not a partition of vda'],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'vda' }, 400, 'partition: vda is not a partition of vda'],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'vda2' }, 400, 'partitionSizeBytes: keep-partitions needs the size of the partition'],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'vda2', partitionSizeBytes: 2 ** 20 }, 422, `partition: vda2 (1048576 bytes) is smaller than image part (${4 * 2 ** 20} bytes)`],
      [{ image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'vda2', partitionSizeBytes: 0 }, 400, 'partitionSizeBytes'],
      [{ image: 'tiny', disk: 'vda', layout: 'whole-disk', multicast: true }, 409, 'no multicast session of image tiny is waiting for receivers'],
    ];
    for (const [body, status, message] of cases) {
      const r = await install(holdToken, body);
      expect(r.statusCode, `${JSON.stringify(body)}: ${r.body}`).toBe(status);
      expect(r.json().error.message).toContain(message);
    }
    // No ticket, a made-up one, an API token: 401 before the body is read.
    for (const token of [undefined, 'plrun_x.0.y.z', t.adminToken]) {
      const r = await inject('POST', '/agent/v1/console/install', { ...(token ? { token } : {}), body: { image: 'tiny', disk: 'vda', layout: 'whole-disk' } });
      expect(r.statusCode).toBe(401);
    }
    expect(await snapshot(t.controller)).toBe(before);
    expect((await machine('con-2')).state).toBe('installer');
  });

  it('refuses a hold the operator did not open with the console, and a hold of a machine that was deployed', async () => {
    await available('con-3', '52:54:00:c0:00:03');
    expect((await act('con-3', 'boot-installer', { sshKeys: [KEY] })).statusCode).toBe(200);
    const { token } = await held('52:54:00:c0:00:03');
    const before = await snapshot(t.controller);
    for (const r of [await inject('GET', '/agent/v1/console/images', { token }), await install(token, { image: 'tiny', disk: 'vda', layout: 'whole-disk' })]) {
      expect(r.statusCode).toBe(403);
      expect(r.json().error.message).toBe("the console is not enabled for machine con-3: an operator enables it with 'plinth machine console con-3'");
    }
    expect(await snapshot(t.controller)).toBe(before);
    // Deployed (the automation installed an OS), then held with the console: its disk is not the console's to give.
    expect((await act('con-3', 'exit-installer', { to: 'deployed' })).statusCode).toBe(200);
    const m = await machine('con-3');
    if (m.state === 'installer-exiting') await t.controller.services.engine.act('con-3', 'exit-done', { actor: { kind: 'system', name: 'test' } });
    expect((await machine('con-3')).state).toBe('deployed');
    expect((await act('con-3', 'boot-installer', { console: true })).statusCode).toBe(200);
    const again = await held('52:54:00:c0:00:03');
    const r = await install(again.token, { image: 'tiny', disk: 'vda', layout: 'whole-disk' });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.message).toBe('machine con-3 was deployed when its console was enabled; the console installs only on a machine that was available');
    // console is boot-installer's alone.
    const bad = await act('con-1', 'rescue', { console: true, sshKeys: [KEY] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toBe('console: only applies to boot-installer, not rescue');
  });

  it("plinth machine console turns the console on, and says in one line when it cannot", async () => {
    await available('con-4', '52:54:00:c0:00:04');
    const run = inProcessCli({ PLINTH_URL: await listening(), PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    const ok = await run('machine', 'console', 'con-4', '--reason', 'at the rack');
    expect(ok.code, ok.stderr).toBe(0);
    const m = await machine('con-4');
    expect(ok.stdout).toBe(`con-4: installer-booting (run ${m.currentRunId}); its console shows the installer's menu once it is up\n`);
    expect((await t.api('GET', `/api/v1/runs/${m.currentRunId}`)).json().params).toMatchObject({ console: true, authorizedKeys: [], returnTo: 'available' });
    const again = await run('machine', 'console', 'con-4');
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain('cannot boot-installer machine con-4: it is installer-booting');
  });

  it('installs: the hold ends, a deploy run starts already claimed, recorded with the choices, and the agent carries on with its ticket', async () => {
    const holdRun = (await machine('con-2')).currentRunId;
    const r = await install(holdToken, { image: 'tiny', disk: 'vda', layout: 'whole-disk' });
    expect(r.statusCode, r.body).toBe(200);
    const { run, token } = r.json();
    expect(token).toMatch(/^plrun_/);
    const m = await machine('con-2');
    expect(m).toMatchObject({ state: 'deploying', currentRunId: run });
    const hold = (await t.api('GET', `/api/v1/runs/${holdRun}`)).json();
    expect(hold.status).toBe('succeeded');
    expect(hold.steps.slice(-2).map((s: any) => [s.name, s.status, s.message])).toEqual([
      ['hold', 'succeeded', null],
      ['exit', 'succeeded', `console install: tiny on vda, deploy run ${run}`],
    ]);
    const deploy = (await t.api('GET', `/api/v1/runs/${run}`)).json();
    expect(deploy).toMatchObject({ kind: 'deploy', status: 'running', params: { method: 'image', image: 'tiny', imageSha256: sha(image), rootDeviceHints: { name: 'vda' }, console: { disk: 'vda', layout: 'whole-disk', multicast: false, holdRun } } });
    expect(deploy.steps.slice(0, 3).map((s: any) => [s.name, s.status])).toEqual([
      ['prepare', 'succeeded'],
      ['power-on', 'succeeded'],
      ['boot-installer', 'succeeded'],
    ]);
    // The old ticket is dead; no boot request gets a ticket for the new run; nothing was powered.
    expect((await install(holdToken, { image: 'tiny', disk: 'vda', layout: 'whole-disk' })).statusCode).toBe(401);
    expect(tokenIn(await bootScript('52:54:00:c0:00:02'))).toBeNull();
    const jobs = await t.controller.services.store.db.selectFrom('provider_jobs').select('id').where('machine_id', '=', m.id).execute();
    expect(jobs).toEqual([]);
    // The deploy's own ticket: hello moves it on, with the image and the disk the console chose.
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    expect(hello.json().run).toMatchObject({ id: run, kind: 'deploy', params: { image: { sha256: sha(image), sizeBytes: image.length }, rootDeviceHints: { name: 'vda' } } });
    expect((await machine('con-2')).state).toBe('deploy-wait');
    // The trace goes on in an attempt of the deploy run with no boot of its own; the boot request
    // above (no ticket: claimed) is an attempt of that run too, and holds the hello that came after it.
    const attempts = (await t.api('GET', '/api/v1/machines/con-2/trace')).json().attempts;
    expect(attempts.slice(-2).map((a: any) => [a.decision, a.stages.map((s: any) => s.stage)])).toEqual([
      ['console-install', ['console-install']],
      ['claimed', ['machine-script', 'agent-hello']],
    ]);
    expect(attempts.at(-2).stages[0].detail).toEqual({ holdRun, image: 'tiny', disk: 'vda', layout: 'whole-disk', multicast: false });
    // A deploy run's ticket is no console's.
    const again = await install(token, { image: 'tiny', disk: 'vda', layout: 'whole-disk' });
    expect(again.statusCode).toBe(403);
    const events = (await t.api('GET', '/api/v1/machines/con-2/events')).json().items.slice(-3);
    expect(events.map((e: any) => [e.actor, e.action, e.fromState, e.toState])).toEqual([
      [`agent:run:${holdRun}`, 'installer-started', 'installer-booting', 'installer'],
      [`agent:run:${holdRun}`, 'console-install', 'installer', 'deploying'],
      [`agent:run:${run}`, 'installer-started', 'deploying', 'deploy-wait'],
    ]);
    deployToken = token;
  });

  let deployToken = '';
  it('reboot and power off chosen on the console are recorded before the installer acts: an event on the machine, a line in the run\'s log', async () => {
    // The last screen, after the install: the console's deploy run reports with its own ticket.
    const r = await inject('POST', '/agent/v1/console/power', { token: deployToken, body: { action: 'reboot' } });
    expect(r.statusCode, r.body).toBe(200);
    const m = await machine('con-2');
    const last = (await t.api('GET', '/api/v1/machines/con-2/events')).json().items.at(-1);
    expect(last).toMatchObject({ actor: `agent:run:${m.currentRunId}`, action: 'console-reboot', fromState: 'deploy-wait', toState: 'deploy-wait', reason: "reboot, chosen on the machine's console" });
    const log = (await t.api('GET', `/api/v1/runs/${m.currentRunId}/log`)).json().items;
    expect(log.at(-1)).toMatchObject({ stream: 'console', line: "console: reboot, chosen on the machine's console; the installer does it now" });
    // The menu of a console hold: its hold's ticket; the machine stays held.
    const p = await inject('POST', '/agent/v1/console/power', { token: con1Token, body: { action: 'poweroff' } });
    expect(p.statusCode, p.body).toBe(200);
    const m1 = await machine('con-1');
    expect(m1.state).toBe('installer');
    const last1 = (await t.api('GET', '/api/v1/machines/con-1/events')).json().items.at(-1);
    expect(last1).toMatchObject({ actor: `agent:run:${m1.currentRunId}`, action: 'console-poweroff', fromState: 'installer', toState: 'installer', reason: "power off, chosen on the machine's console" });
  });

  it('keep-partitions of a partition image: a deploy run that writes it into the chosen partition; a deploy outside the console refuses it', async () => {
    await available('con-6', '52:54:00:c0:00:06');
    expect((await act('con-6', 'boot-installer', { console: true })).statusCode).toBe(200);
    const { token } = await held('52:54:00:c0:00:06');
    const holdRun = (await machine('con-6')).currentRunId;
    const r = await install(token, { image: 'part', disk: 'vda', layout: 'keep-partitions', partition: 'vda2', partitionSizeBytes: 2 ** 29 });
    expect(r.statusCode, r.body).toBe(200);
    const deploy = (await t.api('GET', `/api/v1/runs/${r.json().run}`)).json();
    expect(deploy.params).toMatchObject({ image: 'part', rootDeviceHints: { name: 'vda' }, partition: 'vda2', console: { disk: 'vda', layout: 'keep-partitions', partition: 'vda2', holdRun } });
    const hold = (await t.api('GET', `/api/v1/runs/${holdRun}`)).json();
    expect(hold.steps.at(-1).message).toBe(`console install: part on vda2, deploy run ${r.json().run}`);
    const hello = await inject('POST', '/agent/v1/hello', { token: r.json().token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    expect(hello.json().run.params).toMatchObject({ image: { sizeBytes: 4 * 2 ** 20 }, rootDeviceHints: { name: 'vda' }, partition: 'vda2' });
    // An operator's deploy writes whole disks: a partition image fails its preparation, saying why.
    await available('con-7', '52:54:00:c0:00:07');
    await act('con-7', 'deploy', { image: 'part' });
    const m7 = await machine('con-7');
    expect(m7.state).toBe('deploy-failed');
    expect(m7.lastError.message).toContain("image 'part' is a partition image (one file system): the installer's console writes it into a partition (keep-partitions)");
  });

  it('a power report: bad input names the field; a run that is no console\'s is refused and nothing is recorded', async () => {
    await available('con-5', '52:54:00:c0:00:05');
    expect((await act('con-5', 'boot-installer', { sshKeys: [KEY] })).statusCode).toBe(200);
    const { token } = await held('52:54:00:c0:00:05');
    const before = await snapshot(t.controller);
    const bad = await inject('POST', '/agent/v1/console/power', { token, body: { action: 'explode' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('action');
    const refused = await inject('POST', '/agent/v1/console/power', { token, body: { action: 'poweroff' } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toContain("is not a console's: only a console reports its power choices");
    expect((await inject('POST', '/agent/v1/console/power', { body: { action: 'poweroff' } })).statusCode).toBe(401);
    expect(await snapshot(t.controller)).toBe(before);
    // With the console off, an available machine that network-boots with no orders boots its disk, and is told why.
    expect((await act('con-5', 'exit-installer', { to: 'previous' })).statusCode).toBe(200);
    expect(await bootScript('52:54:00:c0:00:05')).toContain('it is available (console.installWithoutOrders is off');
    expect((await machine('con-5')).state).toBe('available');
  });
});

/**
 * console.installWithoutOrders: an available machine that boots the installer with no orders
 * (a network boot, or the installer ISO asking for a ticket) is held at its console menu by the
 * boot service, with a hold ticket that is this boot's and the machine's own; nothing is powered.
 */
describe.each(backends)('installs without orders on $name', (backend) => {
  let t: TC;
  const image = randomBytes(2 ** 20);
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708', console: { installWithoutOrders: true } }, { installer: placeholderInstaller() });
    const up = await t.inject('POST', `/api/v1/images?name=tiny&sha256=${sha(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
  });
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const machine = async (key: string) => (await t.api('GET', `/api/v1/machines/${key}`)).json();
  const bootScript = async (mac: string) => (await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body;
  const tokenIn = (script: string) => /plinth\.token=(\S+)/.exec(script)?.[1] ?? null;

  /** A machine that network-booted (enrolled: orders to inspect) and was inspected. */
  async function inspected(name: string, mac: string) {
    const token = tokenIn(await bootScript(mac))!;
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    expect((await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 2 ** 30]] }) })).statusCode).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
    expect((await machine(name)).state).toBe('available');
  }

  it('a network boot of an available machine is held at its console, and that hold installs on it', async () => {
    await inspected('free-1', '52:54:00:c1:00:01');
    const script = await bootScript('52:54:00:c1:00:01');
    expect(script).toContain(' plinth.console=1');
    const m = await machine('free-1');
    expect(m.state).toBe('installer-booting');
    const run = (await t.api('GET', `/api/v1/runs/${m.currentRunId}`)).json();
    expect(run).toMatchObject({ kind: 'installer', params: { authorizedKeys: [], returnTo: 'available', console: true } });
    const events = (await t.api('GET', '/api/v1/machines/free-1/events')).json().items;
    expect(events.at(-1)).toMatchObject({ actor: 'system:boot-service', action: 'console-boot', fromState: 'available', toState: 'installer-booting', reason: 'network-booted with no orders (console.installWithoutOrders)' });
    // It is booting already: nothing is powered.
    expect(await t.controller.services.store.db.selectFrom('provider_jobs').select('id').where('machine_id', '=', m.id).execute()).toEqual([]);
    const token = tokenIn(script)!;
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const offer = await inject('GET', '/agent/v1/console/images', { token });
    expect(offer.json().images.map((i: any) => i.name)).toEqual(['tiny']);
    const r = await inject('POST', '/agent/v1/console/install', { token, body: { image: 'tiny', disk: 'vda', layout: 'whole-disk' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(await machine('free-1')).toMatchObject({ state: 'deploying', currentRunId: r.json().run });
  });

  it('the installer ISO of an available machine gets the console hold\'s ticket; a machine in maintenance or deployed gets nothing', async () => {
    await inspected('free-2', '52:54:00:c1:00:02');
    const ask = async (mac: string) => (await inject('GET', `/boot/agent-ticket?mac=${mac}&platform=vmedia`)).json();
    const answer = await ask('52:54:00:c1:00:02');
    expect(answer).toMatchObject({ decision: 'ticket', machine: 'free-2' });
    const m = await machine('free-2');
    expect(answer.runId).toBe(m.currentRunId);
    expect((await t.api('GET', `/api/v1/runs/${m.currentRunId}`)).json().params).toMatchObject({ console: true, returnTo: 'available' });
    expect((await machine('free-2')).state).toBe('installer-booting');
    const events = (await t.api('GET', '/api/v1/machines/free-2/events')).json().items;
    expect(events.at(-1)).toMatchObject({ action: 'console-boot', reason: 'booted the installer ISO with no orders (console.installWithoutOrders)' });
    // In maintenance, an available machine is left alone.
    await inspected('free-3', '52:54:00:c1:00:03');
    expect((await t.api('PATCH', '/api/v1/machines/free-3', { maintenance: true })).statusCode).toBe(200);
    expect(await ask('52:54:00:c1:00:03')).toMatchObject({ decision: 'none' });
    expect((await machine('free-3')).state).toBe('available');
  });
});
