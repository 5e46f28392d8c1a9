import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, type InjectOptions } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { inProcessCli } from '../support/cli.js';
import { RAID1_EXAMPLE } from '../../src/protocol/disk-layout.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * A tree deploy as the controller prepares it, through the API and the CLI: the tree found in
 * the tree store by its ROLE-VERSION name, the disk layout and ONSUCCESS from the request or
 * the profile, checked before anything changes (400 naming the field), the run's steps, and
 * what the agent is handed at hello (the layout, where to fetch the tree, eDeploy's command).
 * Real app, real database, real tree store; the machine's agent is played by its HTTP calls
 * (its disk work is tested on loop devices and in test/e2e/tree-deploy.test.ts).
 */
describe.each(backends)('tree deploys prepared on $name', (backend) => {
  let t: TC;
  let cli: ReturnType<typeof inProcessCli>;
  const work = mkdtempSync(join(tmpdir(), 'plinth-tree-deploy-'));
  beforeAll(async () => {
    writeFileSync(join(work, 'vmlinuz'), 'kernel');
    writeFileSync(join(work, 'initrd.img'), 'initrd');
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708', trees: { rsyncListen: '127.0.0.1:831' } }, { installer: () => ({ kernel: join(work, 'vmlinuz'), initrd: join(work, 'initrd.img') }) });
    cli = inProcessCli({ PLINTH_URL: await t.controller.listen(), PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    mkdirSync(join(work, 'tree/etc'), { recursive: true });
    writeFileSync(join(work, 'tree/etc/role'), 'mysql\n');
    execFileSync('tar', ['-C', join(work, 'tree'), '-cf', join(work, 'tree.tar'), '.']);
    const put = await t.inject('PUT', '/api/v1/trees/mysql/D7-F.1.0.0', { token: t.adminToken, body: readFileSync(join(work, 'tree.tar')), headers: { 'content-type': 'application/octet-stream' } });
    expect(put.statusCode, put.body).toBe(201);
  }, 120_000);
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const tokenFor = async (mac: string) => /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;

  /** A machine with two 8 GiB disks that network-booted and was inspected, named `name`. */
  async function inspected(name: string, mac: string) {
    const token = await tokenFor(mac);
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30], ['vdb', 8 * 2 ** 30]] }) });
    expect(r.statusCode, r.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
  }
  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();

  it('prepares a tree deploy in RAID1 and hands the agent the layout, the tree and eDeploy', async () => {
    await inspected('db-1', '52:54:00:7e:00:01');
    const r = await t.api('POST', '/api/v1/machines/db-1/actions/deploy', { tree: 'mysql-D7-F.1.0.0', diskLayout: RAID1_EXAMPLE, onSuccess: 'kexec' });
    expect(r.statusCode, r.body).toBe(200);
    const { machine: m, run } = r.json();
    expect(m.lastError).toBeNull();
    expect(m.state).toBe('deploying');
    expect(run.params).toMatchObject({ method: 'tree', tree: { role: 'mysql', version: 'D7-F.1.0.0' }, onSuccess: 'kexec', image: null });
    expect(run.steps.map((s: { name: string }) => s.name)).toEqual(['prepare', 'power-on', 'boot-installer', 'agent-hello', 'layout-disks', 'copy-tree', 'configure', 'boot-loader', 'reboot', 'first-boot']);
    const stored = (await t.api('GET', `/api/v1/runs/${run.id}`)).json();
    expect(stored.steps[0]).toMatchObject({ status: 'succeeded', message: expect.stringContaining('tree mysql-D7-F.1.0.0') });

    const token = await tokenFor('52:54:00:7e:00:01');
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    const params = hello.json().run.params;
    expect(Object.keys(params).sort()).toEqual(['seed', 'tree']);
    expect(params.tree).toMatchObject({ role: 'mysql', version: 'D7-F.1.0.0', rsyncPort: 831, tarballUrl: '/install/mysql-D7-F.1.0.0.edeploy', profile: '', onSuccess: 'kexec', diskLayout: RAID1_EXAMPLE });
    expect(params.tree.edeployScript).toBe(readFileSync('bin/edeploy', 'utf8'));
    // The seed carries the run's own callback secret, by which the installed system reports in.
    expect(params.seed.userData).toMatch(/plcb_/);
    // The tarball the agent falls back on is served.
    const tarball = await inject('GET', params.tree.tarballUrl);
    expect(tarball.statusCode).toBe(200);

    // The agent's steps, the switch to the disk, and the installed system reporting in: deployed, with its role and version.
    for (const step of ['layout-disks', 'copy-tree', 'configure', 'boot-loader']) {
      for (const status of ['running', 'succeeded']) expect((await inject('POST', `/agent/v1/steps/${step}`, { token, body: { status, details: { durationMs: 5 } } })).statusCode).toBe(200);
    }
    expect((await inject('POST', '/agent/v1/boot-local', { token, body: {} })).json()).toEqual({ next: 'reboot' });
    const callback = /plcb_[A-Za-z0-9_-]+/.exec(params.seed.userData)![0];
    const reported = await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot', source: 'cloud-init' } });
    expect(reported.statusCode, reported.body).toBe(200);
    expect(await machine('db-1')).toMatchObject({ state: 'deployed', deployment: { image: 'tree', role: 'mysql', version: 'D7-F.1.0.0' } });
    const shown = await cli('machine', 'show', 'db-1');
    expect(shown.stdout).toMatch(/Tree:\s+mysql-D7-F\.1\.0\.0  \(role mysql, version D7-F\.1\.0\.0\)/);
    expect(JSON.parse((await cli('machine', 'show', 'db-1', '--json')).stdout).deployment).toMatchObject({ role: 'mysql', version: 'D7-F.1.0.0' });
    const steps = (await t.api('GET', `/api/v1/runs/${run.id}`)).json().steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`);
    expect(steps).toEqual(['prepare', 'power-on', 'boot-installer', 'agent-hello', 'layout-disks', 'copy-tree', 'configure', 'boot-loader', 'reboot', 'first-boot'].map((n) => `${n}:succeeded`));
    // Taken back, it runs no tree any more.
    expect((await t.api('POST', '/api/v1/machines/db-1/actions/release', { wipe: 'none' })).statusCode).toBe(200);
    expect((await machine('db-1')).deployment).toMatchObject({ role: null, version: null });
  });

  it('refuses a bad layout or a misplaced option with 400 naming the field, and changes nothing', async () => {
    await inspected('db-2', '52:54:00:7e:00:02');
    const refused = async (body: Record<string, unknown>, field: string, message: RegExp) => {
      const r = await t.api('POST', '/api/v1/machines/db-2/actions/deploy', body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.details.field).toBe(field);
      expect(r.json().error.message).toMatch(message);
    };
    const layout = structuredClone(RAID1_EXAMPLE);
    layout.raid![0]!.members = ['roota', 'roota'];
    await refused({ tree: 'mysql-D7-F.1.0.0', diskLayout: layout }, 'diskLayout.raid[0].members[1]', /already taken/);
    await refused({ tree: 'mysql-D7-F.1.0.0', diskLayout: { disks: [{ partitions: [{ id: 'r', use: 'bogus' }] }] } }, 'diskLayout.disks[0].partitions[0].use', /bios-boot/);
    await refused({ tree: 'mysql-D7-F.1.0.0', onSuccess: 'explode' }, 'onSuccess', /kexec/);
    await refused({ image: 'debian-12', diskLayout: RAID1_EXAMPLE }, 'diskLayout', /tree deploys/);
    await refused({ method: 'tree' }, 'tree', /required/);
    await refused({ tree: 'no dash' }, 'tree', /pattern|must match/);
    const m = await machine('db-2');
    expect(m.state).toBe('available');
    const runs = (await t.api('GET', `/api/v1/machines/db-2/runs`)).json().items;
    expect(runs.filter((x: { kind: string }) => x.kind === 'deploy')).toEqual([]);
  });

  it('fails the preparation of a tree the store does not have (lastError.code tree)', async () => {
    await inspected('db-3', '52:54:00:7e:00:03');
    const r = await t.api('POST', '/api/v1/machines/db-3/actions/deploy', { tree: 'mysql-D7-F.9.9.9' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().machine.state).toBe('deploy-failed');
    expect(r.json().machine.lastError).toMatchObject({ code: 'tree', message: expect.stringContaining("tree 'mysql-D7-F.9.9.9' is not in the tree store") });
  });

  it('takes the tree, layout and ONSUCCESS from the profile; the CLI sets them per deploy', async () => {
    const profile = await t.api('POST', '/api/v1/profiles/apply', {
      profiles: [{ name: 'db', spec: [], deploy: { tree: 'mysql-D7-F.1.0.0', diskLayout: RAID1_EXAMPLE, onSuccess: 'reboot' } }],
    });
    expect(profile.statusCode, profile.body).toBe(200);
    await inspected('db-4', '52:54:00:7e:00:04');
    const fromProfile = await t.api('POST', '/api/v1/machines/db-4/actions/deploy', {});
    expect(fromProfile.statusCode, fromProfile.body).toBe(200);
    expect(fromProfile.json().machine, JSON.stringify(fromProfile.json().machine)).toMatchObject({ state: 'deploying' });
    expect(fromProfile.json().run.params).toMatchObject({ method: 'tree', profile: 'db', onSuccess: 'reboot', diskLayout: RAID1_EXAMPLE });
    expect((await t.api('POST', '/api/v1/machines/db-4/actions/abort', {})).statusCode).toBe(200);

    await inspected('db-5', '52:54:00:7e:00:05');
    writeFileSync(join(work, 'single.yaml'), 'disks:\n  - partitions:\n      - { id: bios, sizeMiB: 1, use: bios-boot }\n      - { id: root, use: fs, fs: xfs, mount: / }\n');
    const ok = await cli('machine', 'deploy', 'db-5', '--tree', 'mysql-D7-F.1.0.0', '--on-success', 'console', '--disk-layout', join(work, 'single.yaml'), '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).run.params).toMatchObject({ method: 'tree', onSuccess: 'console', diskLayout: { disks: [{ partitions: [{ id: 'bios' }, { id: 'root', fs: 'xfs' }] }] } });
    const bad = await cli('machine', 'deploy', 'db-5', '--tree', 'mysql-D7-F.1.0.0', '--on-success', 'later');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain("--on-success: 'later' must be kexec, reboot, halt or console");
  });
  it('runs configure scripts before the disks (--script): variables in the hello, a failing script fails the deploy naming it, no disk step started', async () => {
    await inspected('db-6', '52:54:00:7e:00:06');
    writeFileSync(join(work, 'raid.sh'), '#!/bin/sh\necho raid for "$PLINTH_VAR_MACHINE_NAME"\n');
    writeFileSync(join(work, 'fw.sh'), '#!/bin/sh\necho no firmware\nexit 3\n');
    const started = await cli('machine', 'deploy', 'db-6', '--tree', 'mysql-D7-F.1.0.0', '--script', join(work, 'raid.sh'), '--script', join(work, 'fw.sh'), '--script-timeout', '120', '--json');
    expect(started.code, started.stderr).toBe(0);
    const run = JSON.parse(started.stdout).run;
    expect(run.steps.map((s: { name: string }) => s.name)).toEqual(['prepare', 'power-on', 'boot-installer', 'agent-hello', 'script-raid', 'script-fw', 'layout-disks', 'copy-tree', 'configure', 'boot-loader', 'reboot', 'first-boot']);
    const token = await tokenFor('52:54:00:7e:00:06');
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    const params = hello.json().run.params;
    expect(params.scripts).toEqual([
      { name: 'raid', content: '#!/bin/sh\necho raid for "$PLINTH_VAR_MACHINE_NAME"\n', timeoutSeconds: 120 },
      { name: 'fw', content: '#!/bin/sh\necho no firmware\nexit 3\n', timeoutSeconds: 120 },
    ]);
    expect(params.variables).toMatchObject({ machine: { name: 'db-6', serial: 'SER-db-6' } });
    // The agent's reports, as it makes them: the first passes, the second fails, then the agent gives up.
    const result = (exitCode: number, output: string) => ({ exitCode, timedOut: false, durationMs: 5, output, files: [] });
    expect((await inject('POST', '/agent/v1/scripts/raid', { token, body: result(0, 'raid for db-6\n') })).statusCode).toBe(200);
    expect((await inject('POST', '/agent/v1/scripts/fw', { token, body: result(3, 'no firmware\n') })).statusCode).toBe(200);
    expect((await inject('POST', '/agent/v1/fail', { token, body: { code: 'script', stage: 'script-fw', message: 'script fw exited 3: no firmware' } })).statusCode).toBe(200);
    const m = await machine('db-6');
    expect(m.state).toBe('deploy-failed');
    expect(m.lastError).toMatchObject({ code: 'script', stage: 'script-fw', message: 'script fw exited 3: no firmware' });
    const steps = (await t.api('GET', `/api/v1/runs/${run.id}`)).json().steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`);
    expect(steps.slice(4, 7)).toEqual(['script-raid:succeeded', 'script-fw:failed', 'layout-disks:pending']);
    const results = (await t.api('GET', '/api/v1/machines/db-6/scripts')).json().items;
    expect(results.map((r: { name: string; exitCode: number }) => [r.name, r.exitCode])).toEqual([
      ['fw', 3],
      ['raid', 0],
    ]);
    // A retry runs them again, as the failed deploy asked.
    const retried = await t.api('POST', '/api/v1/machines/db-6/actions/retry', {});
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json().run.params.configureScripts.map((s: { name: string }) => s.name)).toEqual(['raid', 'fw']);

    // Where no agent runs them, or for actions that configure nothing: 400 naming the field, nothing changed.
    await inspected('db-7', '52:54:00:7e:00:07');
    const script = [{ name: 'x', content: '#!/bin/sh\n' }];
    const native = await t.api('POST', '/api/v1/machines/db-7/actions/deploy', { method: 'preseed', scripts: script });
    expect(native.statusCode).toBe(400);
    expect(native.json().error.details.field).toBe('scripts');
    const release = await t.api('POST', '/api/v1/machines/db-7/actions/wipe', { scripts: script });
    expect(release.statusCode).toBe(400);
    expect(release.json().error.details.field).toBe('scripts');
    expect((await machine('db-7')).state).toBe('available');
    const noScript = await cli('machine', 'deploy', 'db-7', '--tree', 'mysql-D7-F.1.0.0', '--script-timeout', '5');
    expect(noScript.code).toBe(2);
  });
  it("takes configure scripts from the profile's library names unless the deploy gives its own; a name the library lacks is refused", async () => {
    const content = '#!/bin/sh\necho setting up the RAID controller\n';
    expect((await t.api('PUT', '/api/v1/scripts/raid-ctl', { content, timeoutSeconds: 300 })).statusCode).toBeLessThan(300);
    const apply = (configureScripts: string[]) => t.api('POST', '/api/v1/profiles/apply', { profiles: [{ name: 'db', spec: [], deploy: { tree: 'mysql-D7-F.1.0.0', configureScripts } }] });
    expect((await apply(['raid-ctl'])).statusCode).toBe(200);
    await inspected('db-8', '52:54:00:7e:00:08');
    const fromProfile = await t.api('POST', '/api/v1/machines/db-8/actions/deploy', {});
    expect(fromProfile.statusCode, fromProfile.body).toBe(200);
    expect(fromProfile.json().run.params.configureScripts).toEqual([{ name: 'raid-ctl', content, timeoutSeconds: 300 }]);
    expect(fromProfile.json().run.steps.map((st: { name: string }) => st.name)).toContain('script-raid-ctl');
    const token = await tokenFor('52:54:00:7e:00:08');
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).json().run.params.scripts).toEqual([{ name: 'raid-ctl', content, timeoutSeconds: 300 }]);

    // The request's scripts replace the profile's.
    await inspected('db-9', '52:54:00:7e:00:09');
    const own = await t.api('POST', '/api/v1/machines/db-9/actions/deploy', { scripts: [{ name: 'mine', content: '#!/bin/sh\n' }] });
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json().run.params.configureScripts.map((st: { name: string }) => st.name)).toEqual(['mine']);

    // A name the library lacks: 400 naming it, the machine untouched; a name that cannot be a script's: refused when the profile is written.
    expect((await apply(['raid-ctl', 'nope'])).statusCode).toBe(200);
    await inspected('db-10', '52:54:00:7e:00:0a');
    const missing = await t.api('POST', '/api/v1/machines/db-10/actions/deploy', {});
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.details.field).toBe('profile.deploy.configureScripts[1]');
    expect((await machine('db-10')).state).toBe('available');
    const badName = await apply(['Not A Name']);
    expect(badName.statusCode).toBe(400);
    expect(badName.body).toContain('configureScripts');
  });
});
