import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { backends } from '../support/backends.js';
import { startController, type TestController } from '../support/controller.js';
import type { Clock } from '../../src/core/clock.js';
import { makeFacts } from '../support/facts.js';
import { inProcessCli } from '../support/cli.js';
import { waitFor } from '../support/e2e.js';
import { freePort } from '../support/plinth-process.js';
import { writeFiles as write } from '../support/trees.js';
import { edeployConfOf, POLL_SERVICE, POLL_TIMER } from '../../src/agent/steps/tree-deploy.js';
import type { TreeParams } from '../../src/protocol/agent.js';

/**
 * Hosts installed from a tree talking to the controller: each machine deployed through the
 * API as its agent would (hello, steps, boot-local, the installed system's report-in), its
 * host laid out in a temporary root directory from the controller's real rsync daemon with the
 * conf and credential the agent writes, then the real `edeploy` command (EDEPLOY_ROOT) upgrading
 * it and reporting its version with curl, with wget, and with neither; then rolling upgrades
 * over groups of such hosts, each host polling with `edeploy poll`, across a restart of the
 * controller, and their per-machine deadline, on a clock the test moves on (real time plus a
 * skew). Both databases.
 */
const run = promisify(execFile);
const EDEPLOY = resolve('bin/edeploy');
const V0 = 'D7-F.1.0.0';
const V1 = 'D7-F.1.0.1';
const V2 = 'D7-F.1.0.2';

/** A PATH holding every command of /usr/bin and /bin but those named (a host without curl, say). */
function pathWithout(dir: string, ...missing: string[]): string {
  mkdirSync(dir, { recursive: true });
  for (const from of ['/usr/bin', '/bin']) {
    for (const name of readdirSync(from)) {
      if (missing.includes(name) || existsSync(join(dir, name))) continue;
      symlinkSync(join(from, name), join(dir, name));
    }
  }
  return dir;
}

describe.each(backends)('hosts installed from trees report their versions on $name', (backend) => {
  let db: Awaited<ReturnType<typeof backend.create>>;
  let t: TestController;
  let cli: ReturnType<typeof inProcessCli>;
  let url: string;
  let rsyncPort: number;
  let port: number;
  const work = mkdtempSync(join(tmpdir(), 'plinth-tree-hosts-'));
  const noCurl = join(work, 'bin-no-curl');
  const noTools = join(work, 'bin-no-tools');

  const edeploy = (name: string, args: string[], path = process.env.PATH!) =>
    run('sh', [EDEPLOY, ...args], { env: { ...process.env, PATH: path, EDEPLOY_ROOT: join(work, 'hosts', name) } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();
  const tokenFor = async (mac: string) => /plinth\.token=(\S+)/.exec((await t.inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;
  const tar = (dir: string) => execFileSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 64 * 1024 * 1024 });
  const credentials = new Map<string, string>();
  /** The controllers' clock: real time (hosts and the rsync daemon run in it), moved on by the test to pass a roll's deadline. */
  const clock: Clock & { skew: number } = { skew: 0, now: () => new Date(Date.now() + clock.skew) };
  /** Moves the clock to `ms` after (or, negative, before) an instant of its own time. */
  const setClock = (at: string, ms: number) => (clock.skew += Date.parse(at) + ms - clock.now().getTime());

  /** A machine inspected, deployed with mysql at V0 as its agent and installed system would, and its host root laid out. */
  async function deployedHost(name: string, mac: string): Promise<string> {
    let token = await tokenFor(mac);
    expect((await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const facts = await t.inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] }) });
    expect(facts.statusCode, facts.body).toBe(200);
    const id = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0].id;
    await t.api('PATCH', `/api/v1/machines/${id}`, { name });
    const d = await t.api('POST', `/api/v1/machines/${name}/actions/deploy`, { tree: `mysql-${V0}` });
    expect(d.statusCode, d.body).toBe(200);
    token = await tokenFor(mac);
    const hello = await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    const params = hello.json().run.params as { tree: TreeParams; seed: { userData: string } };
    expect(params.tree.hostToken).toMatch(/^plhost_/);
    for (const step of ['layout-disks', 'copy-tree', 'configure', 'boot-loader']) {
      for (const status of ['running', 'succeeded']) expect((await t.inject('POST', `/agent/v1/steps/${step}`, { token, body: { status, details: { durationMs: 5 } } })).statusCode).toBe(200);
    }
    expect((await t.inject('POST', '/agent/v1/boot-local', { token, body: {} })).statusCode).toBe(200);
    const callback = /plcb_[A-Za-z0-9_-]+/.exec(params.seed.userData)![0];
    expect((await t.inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot', source: 'cloud-init' } })).statusCode).toBe(200);
    expect(await machine(name)).toMatchObject({ state: 'deployed', deployment: { role: 'mysql', version: V0 } });
    // The host as the agent's copy-tree and configure steps leave it: the tree, conf and credential.
    const root = join(work, 'hosts', name);
    mkdirSync(root, { recursive: true });
    await run('rsync', ['-a', `rsync://127.0.0.1:${rsyncPort}/install/${V0}/mysql/`, `${root}/`]);
    write(root, { 'var/lib/edeploy/conf': edeployConfOf(params.tree, url), 'var/lib/edeploy/token': `${params.tree.hostToken}\n` }, 0o600);
    credentials.set(name, params.tree.hostToken!);
    return root;
  }

  beforeAll(async () => {
    rsyncPort = await freePort();
    port = await freePort();
    db = await backend.create();
    await startServing();
    writeFileSync(join(work, 'vmlinuz'), 'kernel');
    writeFileSync(join(work, 'initrd.img'), 'initrd');
    for (const [v, text] of [[V0, 'v0\n'], [V1, 'v1\n'], [V2, 'v2\n']] as const) {
      write(join(work, 'trees', v), { 'etc/mysql/my.cnf': text });
      // Whole systems, as trees are: the host's state directory, and systemd's units (where the deploy adds the poll timer).
      for (const d of ['var/lib/edeploy', 'etc/systemd/system/timers.target.wants']) mkdirSync(join(work, 'trees', v, d), { recursive: true });
      const put = await t.inject('PUT', `/api/v1/trees/mysql/${v}`, { token: t.adminToken, body: tar(join(work, 'trees', v)), headers: { 'content-type': 'application/octet-stream' } });
      expect(put.statusCode, put.body).toBe(201);
    }
    for (const [from, to, step] of [
      [V0, V1, { post: '#!/bin/sh\nexit 100\n' }],
      [V1, V2, { pre: '#!/bin/sh\necho "disk too small" >&2\nexit 3\n' }],
    ] as const) {
      expect((await t.api('PUT', `/api/v1/trees/mysql/${from}/upgrades/${to}`, step)).statusCode).toBe(200);
    }
    pathWithout(noCurl, 'curl');
    pathWithout(noTools, 'curl', 'wget');
    await waitFor('the rsync daemon', 60_000, async () =>
      run('rsync', ['--list-only', `rsync://127.0.0.1:${rsyncPort}/install/`]).then(
        () => true,
        () => undefined,
      ),
    );
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  /** A controller on the test's database and data directory, at the same address every time (hosts keep it in their conf). */
  async function startServing(): Promise<void> {
    t = await startController(db, { listen: `127.0.0.1:${port}`, trees: { rsyncListen: `127.0.0.1:${rsyncPort}` } }, { clock, installer: () => ({ kernel: join(work, 'vmlinuz'), initrd: join(work, 'initrd.img') }) });
    url = await t.controller.listen();
    cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  }

  it('records the version a host reports after edeploy upgrade (curl), with an event, and filters the list by role and version', async () => {
    const root = await deployedHost('db-1', '52:54:00:7f:00:01');
    await deployedHost('db-2', '52:54:00:7f:00:02');
    // The poll timer the deploy enables in a systemd tree is the host's own: upgrades keep it.
    write(root, { 'etc/systemd/system/edeploy-poll.timer': POLL_TIMER, 'etc/systemd/system/edeploy-poll.service': POLL_SERVICE });
    const up = await edeploy('db-1', ['upgrade', V1]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`upgraded mysql from ${V0} to ${V1}: reboot needed\nreported mysql ${V1} to the controller\n`);
    expect(readFileSync(join(root, 'etc/mysql/my.cnf'), 'utf8')).toBe('v1\n');
    expect(readFileSync(join(root, 'etc/systemd/system/edeploy-poll.timer'), 'utf8')).toBe(POLL_TIMER);

    const shown = JSON.parse((await cli('machine', 'show', 'db-1', '--json')).stdout);
    expect(shown.deployment).toMatchObject({ role: 'mysql', version: V1 });
    expect((await machine('db-2')).deployment.version).toBe(V0);
    const events = (await t.api('GET', '/api/v1/machines/db-1/events')).json().items as { action: string; actor: string; reason: string; details: Record<string, unknown> }[];
    expect(events.filter((e) => e.action === 'version-reported')).toEqual([
      expect.objectContaining({ actor: 'host:db-1', reason: `upgraded from ${V0} to ${V1}`, details: { role: 'mysql', version: V1, previous: V0, result: 'upgraded', from: V0, rebootNeeded: true } }),
    ]);

    const byVersion = await cli('machine', 'list', '--role', 'mysql', '--tree-version', V1, '--json');
    expect(byVersion.code, byVersion.stderr).toBe(0);
    expect(JSON.parse(byVersion.stdout).map((m: { name: string }) => m.name)).toEqual(['db-1']);
    expect(JSON.parse((await cli('machine', 'list', '--role', 'mysql', '--json')).stdout).map((m: { name: string }) => m.name)).toEqual(['db-1', 'db-2']);
    expect(JSON.parse((await cli('machine', 'list', '--role', 'web', '--json')).stdout)).toEqual([]);
    expect((await t.api('GET', '/api/v1/machines?role=a%20b')).statusCode).toBe(400);
  });

  it('reports a failed upgrade with its reason, and reports with wget when the host has no curl', async () => {
    const failed = await edeploy('db-1', ['upgrade', V2], noCurl);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toBe(`disk too small\nedeploy: pre exited 3: nothing was changed, the host is still at ${V1}\n`);
    expect(failed.stdout).toBe(`reported mysql ${V1} to the controller\n`);
    const last = (await t.api('GET', '/api/v1/machines/db-1/events')).json().items.at(-1);
    expect(last).toMatchObject({ action: 'version-reported', reason: `upgrade to ${V2} failed: pre exited 3: nothing was changed, the host is still at ${V1}`, details: { result: 'failed', version: V1, target: V2, from: V1 } });
    expect((await machine('db-1')).deployment.version).toBe(V1);
  });

  it('upgrades all the same when the report cannot be made (no curl, no wget), and says so', async () => {
    const root = await deployedHost('db-3', '52:54:00:7f:00:03');
    const up = await edeploy('db-3', ['upgrade', V1], noTools);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`upgraded mysql from ${V0} to ${V1}: reboot needed\n`);
    expect(up.stderr).toBe('edeploy: not reported to the controller: neither curl nor wget is installed\n');
    expect(readFileSync(join(root, 'etc/mysql/my.cnf'), 'utf8')).toBe('v1\n');
    expect((await machine('db-3')).deployment.version).toBe(V0);
    // With a tool again, `edeploy report` tells the controller.
    const r = await edeploy('db-3', ['report']);
    expect(r.stdout).toBe(`reported mysql ${V1} to the controller\n`);
    expect((await machine('db-3')).deployment.version).toBe(V1);
  });

  it("refuses what a host may not say, and a credential that is not this machine's or whose deployment ended", async () => {
    const db1 = credentials.get('db-1')!;
    const db2 = credentials.get('db-2')!;
    const report = (token: string, body: unknown) => t.inject('POST', '/agent/v1/host/version', { token, body });
    const before = await machine('db-1');
    const field = async (body: unknown) => {
      const r = await report(db1, body);
      expect(r.statusCode, r.body).toBe(400);
      return r.json().error.details.field ?? r.json().error.message;
    };
    expect(await field({ role: 'web', version: V1, result: 'running' })).toBe('role');
    expect(await field({ role: 'mysql', version: 'D7-F.9.9.9', result: 'running' })).toBe('version');
    expect(await field({ role: 'mysql', version: V1, result: 'failed' })).toBe('target');
    expect(await field({ role: 'mysql', version: V1, result: 'failed', target: 'nope' })).toBe('target');
    expect(String(await field({ role: 'mysql', version: '../../etc', result: 'running' }))).toMatch(/version/);
    expect(String(await field({ role: 'mysql', version: V1, result: 'running', machine: 'db-2' }))).toMatch(/machine|additional/i);
    expect((await report(db1, { role: 'mysql', version: V1, result: 'running', message: 'x'.repeat(3000) })).statusCode).toBe(400);
    expect(await machine('db-1')).toMatchObject({ version: before.version, deployment: { version: V1 } });

    // Another machine's id under db-1's signature, an API token, a run ticket's shape, junk: 401.
    const [, db1Machine, db1Run, sig] = /^plhost_([^.]+)\.([^.]+)\.(.+)$/.exec(db1)!;
    const db2Machine = /^plhost_([^.]+)\./.exec(db2)![1]!;
    for (const token of [`plhost_${db2Machine}.${db1Run}.${sig}`, `plhost_${db1Machine}.${db1Run}.${sig}x`, t.adminToken, 'plrun_x', 'x']) {
      expect((await report(token, { role: 'mysql', version: V1, result: 'running' })).statusCode).toBe(401);
      expect((await t.inject('GET', '/agent/v1/host/desired', { token })).statusCode).toBe(401);
    }
    // Nor does a host credential open anything else.
    expect((await t.inject('GET', '/api/v1/machines/db-1', { token: db1 })).statusCode).toBe(401);
    expect((await t.inject('POST', '/agent/v1/hello', { token: db1, body: { agentVersion: 't' } })).statusCode).toBe(401);
    expect((await t.inject('GET', '/agent/v1/host/desired', { token: db1 })).json()).toEqual({ role: 'mysql', version: V1, desired: null, roll: null });

    // Released, the machine's credential is dead; its host says the report failed and still upgrades.
    expect((await t.api('POST', '/api/v1/machines/db-2/actions/release', { wipe: 'none' })).statusCode).toBe(200);
    expect((await report(db2, { role: 'mysql', version: V0, result: 'running' })).statusCode).toBe(401);
    const up = await edeploy('db-2', ['upgrade', V1]);
    expect(up.code).toBe(0);
    expect(up.stderr).toMatch(/^edeploy: not reported to the controller: the controller answered 401: host credential is unknown/);
    // The credential never reached a log line or a stored event.
    const all = JSON.stringify((await t.api('GET', '/api/v1/events?limit=1000')).json());
    expect(all).not.toContain(sig);
  });
  it('rolls an upgrade over machines selected by tag, two at a time, as their hosts poll, across a controller restart', async () => {
    for (const n of [1, 2, 3]) {
      await deployedHost(`r-${n}`, `52:54:00:7f:01:0${n}`);
      expect((await t.api('PATCH', `/api/v1/machines/r-${n}`, { tags: { group: 'r' } })).statusCode).toBe(200);
    }
    const started = await cli('tree', 'roll', 'mysql', V1, '--tag', 'group=r', '--parallel', '2', '--json');
    expect(started.code, started.stderr).toBe(0);
    const roll = JSON.parse(started.stdout) as { id: string; state: string; machines: { name: string; state: string; from: string }[] };
    expect(roll.state).toBe('running');
    expect(roll.machines.map((m) => [m.name, m.state, m.from])).toEqual([
      ['r-1', 'upgrading', V0],
      ['r-2', 'upgrading', V0],
      ['r-3', 'pending', V0],
    ]);
    // r-3 waits its turn: its host is asked for nothing yet.
    expect((await edeploy('r-3', ['poll'])).stdout).toBe(`mysql ${V0}: nothing to do\n`);

    // The controller restarts; the roll is in the database and goes on.
    await t.close();
    await startServing();
    const shown = await cli('tree', 'roll-show', roll.id);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`roll ${roll.id}: mysql to ${V1}, 2 at a time, each within 1h: running (1 pending, 2 upgrading)`);

    const polled = await edeploy('r-1', ['poll']);
    expect(polled.stderr).toBe('');
    expect(polled.stdout).toBe(`upgraded mysql from ${V0} to ${V1}: reboot needed\nreported mysql ${V1} to the controller\n`);
    let now = (await t.api('GET', `/api/v1/tree-rolls/${roll.id}`)).json();
    expect(now.machines.map((m: { state: string }) => m.state)).toEqual(['upgraded', 'upgrading', 'upgrading']);
    expect(now.machines[0].message).toBe('reboot needed');
    for (const n of [3, 2]) expect((await edeploy(`r-${n}`, ['poll'])).code).toBe(0);
    now = (await t.api('GET', `/api/v1/tree-rolls/${roll.id}`)).json();
    expect(now).toMatchObject({ state: 'succeeded', failure: null, counts: { upgraded: 3, pending: 0, upgrading: 0, failed: 0 } });
    expect(now.finishedAt).not.toBeNull();
    for (const n of [1, 2, 3]) expect((await machine(`r-${n}`)).deployment.version).toBe(V1);
    expect((await edeploy('r-1', ['poll'])).stdout).toBe(`mysql ${V1}: nothing to do\n`);
    const types = (await t.api('GET', '/api/v1/events?type=tree.&limit=100')).json().items.filter((e: { details: { roll?: string } }) => e.details?.roll === roll.id).map((e: { type: string }) => e.type);
    expect(types).toEqual(['tree.roll-started', 'tree.roll-upgrading', 'tree.roll-upgrading', 'tree.roll-upgraded', 'tree.roll-upgrading', 'tree.roll-upgraded', 'tree.roll-upgraded', 'tree.roll-succeeded']);
  });

  it('stops a roll at the first failure, naming the machine and why; the machines after it are never asked', async () => {
    const started = await cli('tree', 'roll', 'mysql', V2, '--machines', 'r-2,r-1,r-3', '--json');
    expect(started.code, started.stderr).toBe(0);
    const id = JSON.parse(started.stdout).id as string;
    const failed = await edeploy('r-2', ['poll']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('edeploy: pre exited 3');
    const now = (await t.api('GET', `/api/v1/tree-rolls/${id}`)).json();
    const why = `pre exited 3: nothing was changed, the host is still at ${V1}`;
    expect(now).toMatchObject({ state: 'failed', failure: { machine: 'r-2', message: why }, counts: { failed: 1, pending: 2 } });
    expect(now.machines.map((m: { name: string; state: string }) => `${m.name}:${m.state}`)).toEqual(['r-2:failed', 'r-1:pending', 'r-3:pending']);
    expect((await edeploy('r-1', ['poll'])).stdout).toBe(`mysql ${V1}: nothing to do\n`);
    const shown = await cli('tree', 'roll-show', id);
    expect(shown.stdout).toContain(`stopped at r-2: ${why}`);
    const list = await cli('tree', 'roll-list', '--json');
    expect(JSON.parse(list.stdout).map((r: { id: string; state: string }) => [r.id, r.state])[0]).toEqual([id, 'failed']);
    const last = (await t.api('GET', '/api/v1/events?type=tree.roll-failed&limit=100')).json().items.at(-1);
    expect(last).toMatchObject({ type: 'tree.roll-failed', reason: `stopped at r-2: ${why}` });
  });

  it('refuses a roll it cannot do, naming the machine or field, and starts nothing; stops one on request', async () => {
    await deployedHost('r-4', '52:54:00:7f:01:04');
    const before = (await t.api('GET', '/api/v1/tree-rolls')).json().items.length;
    const refuse = async (body: Record<string, unknown>, status = 400) => {
      const r = await t.api('POST', '/api/v1/tree-rolls', body);
      expect(r.statusCode, r.body).toBe(status);
      return r.json().error;
    };
    expect((await refuse({ role: 'mysql', to: V1, machines: ['r-4', 'db-2'] })).details).toMatchObject({ field: 'machines[1]', machine: 'db-2' }); // released
    expect((await refuse({ role: 'mysql', to: V1, machines: ['nope'] })).details.field).toBe('machines[0]');
    expect((await refuse({ role: 'mysql', to: V1, machines: ['r-4', 'r-4'] })).details.field).toBe('machines[1]');
    const noPath = await refuse({ role: 'mysql', to: V2, machines: ['r-4'] });
    expect(noPath.message).toContain(`machine r-4 runs mysql ${V0}, and no upgrade step from ${V0} to ${V2} is stored`);
    expect((await refuse({ role: 'mysql', to: 'D7-F.9', machines: ['r-4'] })).details.field).toBe('to');
    expect((await refuse({ role: 'web', to: V1, machines: ['r-4'] })).details.field).toBe('to');
    expect((await refuse({ role: 'mysql', to: V1, machines: ['r-4'], tags: ['group=r'] })).details.field).toBe('machines');
    expect((await refuse({ role: 'mysql', to: V1, tags: ['group=none'] })).details.field).toBe('tags');
    expect((await refuse({ role: 'mysql', to: V1, machines: ['r-4'], parallel: 0 })).details.field).toMatch(/parallel/);
    for (const deadlineSeconds of [0, 59, -1, 30 * 86_400 + 1, 90.5, '90', '30m', null]) {
      const e = await refuse({ role: 'mysql', to: V1, machines: ['r-4'], deadlineSeconds });
      expect(e.details.field, String(deadlineSeconds)).toBe('deadlineSeconds');
    }
    for (const garbage of ['soon', '30 minutes', '5x', '-5m', '']) {
      const bad = await cli('tree', 'roll', 'mysql', V1, '--machines', 'r-4', '--deadline', garbage);
      expect([bad.code, bad.stderr], garbage).toEqual([2, `plinth: --deadline: '${garbage}' is not a duration (e.g. 60s, 2m)\n`]);
    }
    const spec = (await t.api('GET', '/api/v1/openapi.json', undefined, null)).json();
    const documented = spec.paths['/api/v1/tree-rolls'].post;
    expect(documented.requestBody.content['application/json'].schema.properties.deadlineSeconds).toMatchObject({ type: 'integer', minimum: 60, maximum: 30 * 86_400, default: 3600, description: expect.stringMatching(/^how long each machine has, from being asked/) });
    expect(documented.responses['201'].content['application/json'].schema.properties.machines.items.properties.deadlineAt.description).toMatch(/fails the roll/);
    const short = await cli('tree', 'roll', 'mysql', V1, '--machines', 'r-4', '--deadline', '10s');
    expect(short.code).not.toBe(0);
    expect(short.stderr.trim().split('\n')).toHaveLength(1);
    expect(short.stderr).toContain('deadlineSeconds');
    expect((await refuse({ role: 'mysql', to: V1, machines: ['r-4'], extra: 1 })).message).toMatch(/extra|additional/i);
    const both = await cli('tree', 'roll', 'mysql', V1, '--machines', 'r-4', '--tag', 'group=r');
    expect(both.code).toBe(2);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
    expect((await t.api('GET', '/api/v1/tree-rolls')).json().items).toHaveLength(before);

    // A machine in a running roll is in no other; a stopped roll asks nothing more of its hosts.
    const firstRun = await cli('tree', 'roll', 'mysql', V1, '--machines', 'r-4', '--deadline', '2h', '--json');
    expect(firstRun.code, firstRun.stderr).toBe(0);
    const first = JSON.parse(firstRun.stdout);
    expect(first).toMatchObject({ deadlineSeconds: 7200, machines: [{ state: 'upgrading', polledAt: null }] });
    expect(Date.parse(first.machines[0].deadlineAt) - Date.parse(first.machines[0].startedAt)).toBe(7200_000);
    const busy = await refuse({ role: 'mysql', to: V1, machines: ['r-4'] }, 409);
    expect(busy.message).toContain(`machine r-4 is in roll ${first.id}`);
    const stopped = await cli('tree', 'roll-stop', first.id);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('stopped');
    expect((await edeploy('r-4', ['poll'])).stdout).toBe(`mysql ${V0}: nothing to do\n`);
    expect((await t.api('POST', `/api/v1/tree-rolls/${first.id}/stop`, {})).statusCode).toBe(409);
    expect((await t.api('GET', '/api/v1/tree-rolls/not-a-roll')).statusCode).toBe(400);
    // Free again: a new roll may take it. Released before its host upgrades, it fails that roll.
    const second = await t.api('POST', '/api/v1/tree-rolls', { role: 'mysql', to: V1, machines: ['r-4'] });
    expect(second.statusCode).toBe(201);
    expect((await t.api('POST', '/api/v1/machines/r-4/actions/release', { wipe: 'none' })).statusCode).toBe(200);
    const gone = (await t.api('GET', `/api/v1/tree-rolls/${second.json().id}`)).json();
    expect(gone).toMatchObject({ state: 'failed', failure: { machine: 'r-4', message: expect.stringMatching(/^the machine left deployed \(release, now \S+\) before it reached D7-F\.1\.0\.1$/) } });
  });

  it("fails a machine that does not report within the roll's deadline, and the roll with it; a report just before it wins; a late one is recorded and revives nothing", async () => {
    for (const n of [1, 2, 3, 4]) await deployedHost(`d-${n}`, `52:54:00:7f:02:0${n}`);
    const started = await cli('tree', 'roll', 'mysql', V1, '--machines', 'd-1,d-2,d-3,d-4', '--parallel', '2', '--deadline', '30m', '--json');
    expect(started.code, started.stderr).toBe(0);
    const roll = JSON.parse(started.stdout) as { id: string; deadlineSeconds: number; machines: { name: string; state: string; startedAt: string; deadlineAt: string | null }[] };
    expect(roll.deadlineSeconds).toBe(1800);
    const [d1, d2] = roll.machines;
    expect(Date.parse(d2!.deadlineAt!) - Date.parse(d2!.startedAt)).toBe(1800_000);
    expect(roll.machines.map((m) => [m.name, m.state, m.deadlineAt !== null])).toEqual([
      ['d-1', 'upgrading', true],
      ['d-2', 'upgrading', true],
      ['d-3', 'pending', false],
      ['d-4', 'pending', false],
    ]);
    // d-2's host polls and is told, but never reports (its upgrade hangs, say).
    expect((await t.inject('GET', '/agent/v1/host/desired', { token: credentials.get('d-2') })).json()).toMatchObject({ desired: V1, roll: roll.id });
    const polledAt = (await t.api('GET', `/api/v1/tree-rolls/${roll.id}`)).json().machines[1].polledAt as string;
    expect(polledAt).not.toBeNull();

    // A second before d-1's deadline its host upgrades and reports: it counts, and d-3 is asked.
    setClock(d1!.deadlineAt!, -1000);
    expect((await t.controller.sweeper.sweepOnce())).toBe(0);
    const polled = await edeploy('d-1', ['poll']);
    expect(polled.stdout).toBe(`upgraded mysql from ${V0} to ${V1}: reboot needed\nreported mysql ${V1} to the controller\n`);
    setClock(d1!.deadlineAt!, 1000);
    await t.controller.sweeper.sweepOnce();
    let now = (await t.api('GET', `/api/v1/tree-rolls/${roll.id}`)).json();
    expect(now.machines.map((m: { name: string; state: string }) => `${m.name}:${m.state}`)).toEqual(['d-1:upgraded', 'd-2:failed', 'd-3:upgrading', 'd-4:pending']);
    // d-2 passed its deadline with d-1's (asked at the same instant): it fails, and stops the roll; d-4 is never asked.
    const why = `did not report ${V1} within 30m of being asked: its host polled at ${polledAt} and was told, but its upgrade never reported (still running, stopped before its report, or the report did not reach the controller)`;
    expect(now).toMatchObject({ state: 'failed', failure: { machine: 'd-2', message: why } });
    expect(now.machines[1].message).toBe(why);
    expect(now.machines[2].deadlineAt > d1!.deadlineAt!).toBe(true);
    expect((await edeploy('d-4', ['poll'])).stdout).toBe(`mysql ${V0}: nothing to do\n`);
    expect((await edeploy('d-3', ['poll'])).stdout).toBe(`mysql ${V0}: nothing to do\n`);
    const failures = (await t.api('GET', '/api/v1/events?type=tree.roll-failed&limit=1000')).json().items.filter((e: { details: { roll?: string } }) => e.details.roll === roll.id);
    expect(failures).toEqual([
      expect.objectContaining({ actor: 'system:roll', reason: `d-2: ${why}`, details: { roll: roll.id, role: 'mysql', to: V1, deadlineSeconds: 1800 } }),
      expect.objectContaining({ actor: 'system:roll', reason: `stopped at d-2: ${why}`, details: { roll: roll.id, role: 'mysql', to: V1, machine: 'd-2' } }),
    ]);
    const shown = await cli('tree', 'roll-show', roll.id);
    expect(shown.stdout).toContain(`roll ${roll.id}: mysql to ${V1}, 2 at a time, each within 30m: failed (1 pending, 1 upgrading, 1 upgraded, 1 failed)\nstopped at d-2: ${why}\n`);
    const listed = await cli('tree', 'roll-list');
    expect(listed.stdout.split('\n').find((l) => l.startsWith(roll.id))).toMatch(new RegExp(`^${roll.id}\\s+mysql\\s+${V1.replace(/\./g, '\\.')}\\s+2\\s+30m\\s+failed\\s`));

    // Its upgrade done at last, d-2's host reports: the version is recorded, the roll stays failed.
    const late = await edeploy('d-2', ['upgrade', V1]);
    expect(late.stderr).toBe('');
    expect(late.stdout).toBe(`upgraded mysql from ${V0} to ${V1}: reboot needed\nreported mysql ${V1} to the controller\n`);
    expect((await machine('d-2')).deployment.version).toBe(V1);
    now = (await t.api('GET', `/api/v1/tree-rolls/${roll.id}`)).json();
    expect(now).toMatchObject({ state: 'failed', failure: { machine: 'd-2', message: why }, counts: { upgraded: 1, upgrading: 1, pending: 1, failed: 1 } });
    expect(await t.controller.sweeper.sweepOnce()).toBe(0);
  });

  it('names a host that never polled, across a restart; several sweeps at once (two controllers on PostgreSQL) and a report racing the expiry each give one outcome', async () => {
    for (const n of [1, 2]) await deployedHost(`e-${n}`, `52:54:00:7f:03:0${n}`);
    const start = async (name: string) => {
      const r = await cli('tree', 'roll', 'mysql', V1, '--machines', name, '--deadline', '90s', '--json');
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { id: string; deadlineSeconds: number; machines: { deadlineAt: string }[] };
    };
    const quiet = await start('e-1');
    // The deadline is the database's: a restarted controller keeps it.
    await t.close();
    await startServing();
    const sweeping: TestController[] = [t];
    // Several controllers share a PostgreSQL; on SQLite they are processes serialised by the file's write lock, so there one controller sweeps several times at once.
    if (backend.name === 'postgres') {
      // Controllers sharing a database share its secret key (docs/scale-out.md): the second refuses to start otherwise.
      const second = mkdtempSync(join(work, 'second-'));
      copyFileSync(join(db.dataDir, 'secret.key'), join(second, 'secret.key'));
      sweeping.push(await startController({ ...db, dataDir: second }, {}, { clock }));
    }
    try {
      expect(quiet.deadlineSeconds).toBe(90);
      setClock(quiet.machines[0]!.deadlineAt, 1000);
      await Promise.all([0, 1, 2, 3].map((i) => sweeping[i % sweeping.length]!.controller.sweeper.sweepOnce()));
      const why = `did not report ${V1} within 90s of being asked: its host never polled (edeploy poll)`;
      expect((await t.api('GET', `/api/v1/tree-rolls/${quiet.id}`)).json()).toMatchObject({ state: 'failed', failure: { machine: 'e-1', message: why }, machines: [{ state: 'failed', polledAt: null, message: why }] });
      const events = (await t.api('GET', '/api/v1/events?type=tree.roll-&limit=1000')).json().items.filter((e: { details: { roll?: string } }) => e.details.roll === quiet.id);
      expect(events.map((e: { type: string }) => e.type)).toEqual(['tree.roll-started', 'tree.roll-upgrading', 'tree.roll-failed', 'tree.roll-failed']);

      // e-2's host reports as its deadline is swept: either it counts (upgraded, the roll succeeded) or the expiry does (failed, the roll failed), never both.
      const raced = await start('e-2');
      setClock(raced.machines[0]!.deadlineAt, 1000);
      const [report] = await Promise.all([
        t.inject('POST', '/agent/v1/host/version', { token: credentials.get('e-2'), body: { role: 'mysql', version: V1, result: 'upgraded', from: V0 } }),
        ...sweeping.map((c) => c.controller.sweeper.sweepOnce()),
      ]);
      expect(report!.statusCode, report!.body).toBe(200);
      expect((await machine('e-2')).deployment.version).toBe(V1);
      const after = (await t.api('GET', `/api/v1/tree-rolls/${raced.id}`)).json();
      const outcome = [after.state, after.machines[0].state];
      expect([['succeeded', 'upgraded'], ['failed', 'failed']]).toContainEqual(outcome);
      const types = (await t.api('GET', '/api/v1/events?type=tree.roll-&limit=1000')).json().items.filter((e: { details: { roll?: string } }) => e.details.roll === raced.id).map((e: { type: string }) => e.type);
      expect(types).toEqual(outcome[0] === 'succeeded' ? ['tree.roll-started', 'tree.roll-upgrading', 'tree.roll-upgraded', 'tree.roll-succeeded'] : ['tree.roll-started', 'tree.roll-upgrading', 'tree.roll-failed', 'tree.roll-failed']);
    } finally {
      for (const c of sweeping.slice(1)) await c.close();
    }
  });
});
