import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends, sqliteBackend } from '../support/backends.js';
import { inProcessCli as cli } from '../support/cli.js';
import { freshController, placeholderInstaller, snapshot, type InjectOptions } from '../support/controller.js';
import { heldInstallerController } from '../support/held-installer.js';
import type { RedfishPeer } from '../support/peers/redfish-server.js';
import { LabDir } from '../../src/lab/provider.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const agent = { kind: 'agent' as const, name: 'installer' };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx automation@test';
const OS_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9zaG9zdGtleXdyaXR0ZW5ieXRoZWF1dG9tYXRpb24x';
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3RrZXlnZW5lcmF0ZWRhdHRoaXNib290MTIz root@installer';

/**
 * The installer held for work done over SSH (boot-installer, rescue) and the ways out of it:
 * the run keeps the caller's keys and the state to go back to; the agent gets the keys in its
 * hello and reports its SSH server; leaving for the installed OS switches the machine to its
 * disk through its appliance (a Redfish service here) before it counts as deployed.
 */
describe.each(backends)('installer hold and rescue on $name', (backend) => {
  let t: TC;
  let peer: RedfishPeer;
  beforeAll(async () => {
    ({ t, peer } = await heldInstallerController(backend));
  });
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();
  const act = (name: string, action: string, body: object = {}) => t.api('POST', `/api/v1/machines/${name}/actions/${action}`, body);
  const tokenFor = async (mac: string) => /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;
  /** Waits for a condition on the machine (power jobs finish on their own time). */
  async function until(name: string, ok: (m: any) => boolean): Promise<any> {
    let m = await machine(name);
    for (let i = 0; i < 400 && !ok(m); i++) {
      await new Promise((r) => setTimeout(r, 50));
      m = await machine(name);
    }
    return m;
  }
  async function waitFor(ok: () => boolean): Promise<void> {
    for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(ok()).toBe(true);
  }
  /** Makes an enrolled machine available the way an inspection ends. */
  async function makeAvailable(name: string): Promise<void> {
    const r = await act(name, 'inspect');
    expect(r.statusCode, r.body).toBe(200);
    const run = r.json().run.id;
    await t.controller.services.engine.act(name, 'installer-started', { actor: agent, runId: run });
    await t.controller.services.engine.act(name, 'inspect-done', { actor: agent, runId: run });
  }
  /** The installer boots and its agent says hello, then reports its SSH server. */
  async function installerUp(mac: string, addresses = ['10.0.2.15']) {
    const token = await tokenFor(mac);
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    const ssh = await inject('POST', '/agent/v1/ssh', { token, body: { port: 22, hostKeys: [HOST_KEY], addresses } });
    expect(ssh.statusCode, ssh.body).toBe(200);
    expect(ssh.json()).toEqual({ next: 'wait' });
    return { token, hello: hello.json() };
  }

  it('refuses boot-installer without keys or with a bad one, naming the field and changing nothing', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'hold-1', identity: { macs: ['52:54:00:14:00:01'] } });
    await makeAvailable('hold-1');
    const before = await snapshot(t.controller);
    const cases: [object, string][] = [
      [{}, 'sshKeys: boot-installer needs at least one public key to let in'],
      [{ sshKeys: [] }, 'sshKeys: boot-installer needs at least one public key to let in'],
      [{ sshKeys: ['not a key at all, no'] }, 'sshKeys[0]: must match pattern'],
      [{ sshKeys: [KEY], to: 'deployed' }, 'to: only applies to exit-installer, not boot-installer'],
      [{ sshKeys: [KEY], wipe: 'full' }, 'wipe: only applies to release and wipe, not boot-installer'],
    ];
    for (const [body, message] of cases) {
      const r = await act('hold-1', 'boot-installer', body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toContain(message);
    }
    expect((await act('hold-1', 'rescue', {})).json().error.message).toBe('sshKeys: rescue needs at least one public key to let in');
    expect((await act('hold-1', 'exit-installer', {})).statusCode).toBe(409);
    expect((await t.api('GET', '/api/v1/machines/hold-1/installer')).statusCode).toBe(409);
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('boots the installer with the keys in the hello, serves its host keys as known_hosts, and goes back to available', async () => {
    const r = await act('hold-1', 'boot-installer', { sshKeys: [KEY], reason: 'ansible install' });
    expect(r.statusCode, r.body).toBe(200);
    const { machine: m, run } = r.json();
    expect(m).toMatchObject({ state: 'installer-booting', targetState: 'installer', allowedActions: ['abort'] });
    expect(m.stateDeadline).not.toBeNull();
    expect(run).toMatchObject({ kind: 'installer', params: { authorizedKeys: [KEY], returnTo: 'available' } });
    expect(run.steps.map((s: any) => s.name)).toEqual(['power-on', 'boot-installer', 'agent-hello', 'ssh-server', 'hold', 'exit']);
    // Not up yet: the endpoint says so rather than guessing.
    expect((await t.api('GET', '/api/v1/machines/hold-1/installer')).json()).toMatchObject({ state: 'installer-booting', address: null, port: null, knownHosts: [] });

    const { token, hello } = await installerUp('52:54:00:14:00:01');
    expect(hello.run).toEqual({ id: run.id, kind: 'installer', params: { authorizedKeys: [KEY] } });
    const held = await machine('hold-1');
    expect(held).toMatchObject({ state: 'installer', targetState: 'installer', currentRunId: run.id, allowedActions: ['abort', 'exit-installer'] });
    const access = (await t.api('GET', '/api/v1/machines/hold-1/installer')).json();
    expect(access).toMatchObject({ machine: 'hold-1', state: 'installer', run: run.id, kind: 'installer', user: 'root', address: '10.0.2.15', port: 22, hostKeys: [HOST_KEY] });
    expect(access.knownHosts).toEqual([HOST_KEY.split(' ').slice(0, 2).join(' ').replace(/^/, '10.0.2.15 ')]);
    const steps = (await t.api('GET', `/api/v1/runs/${run.id}`)).json().steps;
    expect(steps.map((s: any) => [s.name, s.status])).toEqual([
      ['power-on', 'succeeded'],
      ['boot-installer', 'succeeded'],
      ['agent-hello', 'succeeded'],
      ['ssh-server', 'succeeded'],
      ['hold', 'running'],
      ['exit', 'pending'],
    ]);
    // A report that is not an SSH server's is refused, naming the field.
    const bad = await inject('POST', '/agent/v1/ssh', { token, body: { port: 22, hostKeys: [] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('hostKeys');

    const out = await act('hold-1', 'exit-installer', { to: 'previous' });
    expect(out.statusCode, out.body).toBe(200);
    expect(out.json().machine).toMatchObject({ state: 'available', currentRunId: null, stateDeadline: null });
    const done = (await t.api('GET', `/api/v1/runs/${run.id}`)).json();
    expect(done.status).toBe('succeeded');
    expect(done.steps.slice(-2).map((s: any) => [s.name, s.status])).toEqual([
      ['hold', 'succeeded'],
      ['exit', 'succeeded'],
    ]);
    // The run is over: its ticket no longer reports anything.
    expect((await inject('POST', '/agent/v1/ssh', { token, body: { port: 22, hostKeys: [HOST_KEY] } })).statusCode).toBe(401);
    const ev = (await t.api('GET', '/api/v1/machines/hold-1/events')).json().items.slice(-3);
    expect(ev.map((e: any) => [e.actor, e.action, e.fromState, e.toState])).toEqual([
      ['operator:admin', 'boot-installer', 'available', 'installer-booting'],
      ['agent:run:' + run.id, 'installer-started', 'installer-booting', 'installer'],
      ['operator:admin', 'exit-installer', 'installer', 'available'],
    ]);
    expect(ev[0].reason).toBe('ansible install');
    expect(ev[2].details).toMatchObject({ exitTo: 'available', finishedRun: run.id });
  });

  it('a hold that runs out fails into installer-failed; an operator can still send the machine back', async () => {
    const r = await act('hold-1', 'boot-installer', { sshKeys: [KEY] });
    await installerUp('52:54:00:14:00:01');
    await t.controller.services.engine.act('hold-1', 'timeout', { actor: { kind: 'system', name: 'test' }, error: { code: 'timeout', message: 'hold ran out' } });
    const failed = await machine('hold-1');
    expect(failed).toMatchObject({ state: 'installer-failed', lastError: { code: 'timeout' }, currentRunId: null });
    expect(failed.allowedActions.sort()).toEqual(['exit-installer', 'retire']);
    expect((await t.api('GET', `/api/v1/runs/${r.json().run.id}`)).json().status).toBe('failed');
    const back = await act('hold-1', 'exit-installer', {});
    expect(back.json().machine.state).toBe('available');
  });

  it('rescue keeps the state it came from and exit-rescue returns there; it takes no --to', async () => {
    const r = await act('hold-1', 'rescue', { sshKeys: [KEY] });
    expect(r.json()).toMatchObject({ machine: { state: 'rescue-booting', targetState: 'rescue' }, run: { kind: 'rescue', params: { returnTo: 'available' } } });
    const { hello } = await installerUp('52:54:00:14:00:01');
    expect(hello.run.kind).toBe('rescue');
    expect((await machine('hold-1')).state).toBe('rescue');
    expect((await t.api('GET', '/api/v1/machines/hold-1/installer')).json()).toMatchObject({ kind: 'rescue', address: '10.0.2.15' });
    const withTo = await act('hold-1', 'exit-rescue', { to: 'deployed' });
    expect(withTo.statusCode).toBe(400);
    expect(withTo.json().error.message).toBe('to: only applies to exit-installer, not exit-rescue');
    expect((await act('hold-1', 'exit-installer', {})).statusCode).toBe(409);
    const out = await act('hold-1', 'exit-rescue', {});
    expect(out.json().machine.state).toBe('available');
  });

  it('leaves the installer for the installed OS: the appliance boots the disk, then the machine is deployed; rescue returns to it', async () => {
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-14', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' })).statusCode).toBe(201);
    const [e] = (await t.api('POST', '/api/v1/appliances/bmc-14/enlist', {})).json().items;
    await t.api('PATCH', `/api/v1/machines/${e.machine.id}`, { name: 'hold-2' });
    const mac = e.machine.identity.macs[0];
    await makeAvailable('hold-2');

    const r = await act('hold-2', 'boot-installer', { sshKeys: [KEY] });
    expect(r.statusCode, r.body).toBe(200);
    const run = r.json().run.id;
    // The appliance network-boots it into the installer.
    await until('hold-2', (m) => m.power.state === 'on');
    expect((peer.system() as { Boot: { BootSourceOverrideTarget: string } }).Boot.BootSourceOverrideTarget).toBe('Pxe');
    await installerUp(mac);

    // Host keys only go with an exit to the installed OS; the OS's keys are kept to be pinned.
    const misplaced = await act('hold-2', 'exit-installer', { hostKeys: [OS_HOST_KEY] });
    expect(misplaced.statusCode).toBe(400);
    expect(misplaced.json().error.message).toBe('hostKeys: only applies to exit-installer with to: deployed');
    const exit = await act('hold-2', 'exit-installer', { to: 'deployed', hostKeys: [`${OS_HOST_KEY} root@os`, OS_HOST_KEY] });
    expect(exit.statusCode, exit.body).toBe(200);
    expect(exit.json().machine).toMatchObject({ state: 'installer-exiting', targetState: 'deployed', currentRunId: run });
    const deployed = await until('hold-2', (m) => m.state === 'deployed');
    expect(deployed).toMatchObject({ state: 'deployed', currentRunId: null, power: { expected: 'on' }, deployment: { image: null, hostKeys: [OS_HOST_KEY] } });
    expect((peer.system() as { Boot: { BootSourceOverrideTarget: string; BootSourceOverrideEnabled: string } }).Boot).toMatchObject({ BootSourceOverrideTarget: 'Hdd', BootSourceOverrideEnabled: 'Continuous' });
    const steps = (await t.api('GET', `/api/v1/runs/${run}`)).json();
    expect(steps.status).toBe('succeeded');
    expect(steps.steps.slice(-2).map((s: any) => [s.name, s.status])).toEqual([
      ['hold', 'succeeded'],
      ['exit', 'succeeded'],
    ]);
    const ev = (await t.api('GET', '/api/v1/machines/hold-2/events')).json().items.map((x: any) => [x.actor, x.action, x.toState]);
    expect(ev).toContainEqual(['system:power', 'exit-done', 'deployed']);

    // A protected machine is not handed to automation that may overwrite it; rescue leaves disks alone and is allowed.
    await t.api('PATCH', '/api/v1/machines/hold-2', { protected: true });
    const refused = await act('hold-2', 'boot-installer', { sshKeys: [KEY] });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('protected');
    const beforeRescue = peer.resets.length;
    const rescue = await act('hold-2', 'rescue', { sshKeys: [KEY] });
    expect(rescue.json()).toMatchObject({ machine: { state: 'rescue-booting' }, run: { params: { returnTo: 'deployed' } } });
    // The appliance network-boots it into rescue (a reset with the PXE override), then it reports in.
    await waitFor(() => peer.resets.length > beforeRescue);
    expect((peer.system() as { Boot: { BootSourceOverrideTarget: string } }).Boot.BootSourceOverrideTarget).toBe('Pxe');
    await installerUp(mac);
    const resets = peer.resets.length;
    const back = await act('hold-2', 'exit-rescue', {});
    expect(back.json().machine).toMatchObject({ state: 'deployed', currentRunId: null });
    // Back to its disk: the appliance boots the disk and resets the machine.
    await waitFor(() => peer.resets.length > resets);
    expect((peer.system() as { Boot: { BootSourceOverrideTarget: string } }).Boot.BootSourceOverrideTarget).toBe('Hdd');
  });
});

/**
 * A QEMU lab VM sits behind QEMU's user network: the address its installer reports (10.0.2.15)
 * is not one a client on the controller's host can use. Its lab definition forwards a host port
 * to its SSH port, and that forward is what the controller serves (and pins in known_hosts).
 */
describe.each(backends)('the installer of a QEMU lab VM on $name', (backend) => {
  let t: TC;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-hold-lab-'));
  const lab = new LabDir(join(dir, 'lab'));
  beforeAll(async () => {
    // No power runner: the power-on stays queued, no QEMU starts; the agent's side is played here.
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { installer: placeholderInstaller('plinth-hold-lab-') });
  });
  afterAll(async () => t?.close());
  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });

  it('serves the forwarded host port as the installer\'s address and pins its host key there; a VM on a tap network keeps its own address; an uninspected VM goes back to enrolled', async () => {
    lab.write({ name: 'fwd-14', nics: [{ mac: '52:54:00:14:01:01', hostForwards: [{ hostPort: 40222, guestPort: 8080 }, { hostPort: 40022, guestPort: 22 }] }] });
    lab.write({ name: 'tap-14', nics: [{ mac: '52:54:00:14:01:02', tap: 'tap14', hostForwards: [{ hostPort: 40023, guestPort: 22 }] }] });
    const a = await t.api('POST', '/api/v1/appliances', { name: 'lab-14', type: 'qemu', address: lab.dir });
    expect(a.statusCode, a.body).toBe(201);
    const engine = t.controller.services.engine;
    const access: Record<string, any> = {};
    for (const [name, mac] of [['fwd-14', '52:54:00:14:01:01'], ['tap-14', '52:54:00:14:01:02']] as const) {
      const c = await t.api('POST', '/api/v1/machines', { name, identity: { macs: [mac] }, provider: { applianceId: a.json().id, ref: name } });
      expect(c.statusCode, c.body).toBe(201);
      // tap-14 stays uninspected (enrolled): Tateru's flow boots such a machine into the installer too.
      if (name === 'fwd-14') {
        const inspect = await engine.act(name, 'inspect', { actor: { kind: 'operator', name: 'test' } });
        await engine.act(name, 'installer-started', { actor: agent, runId: inspect.run!.id });
        await engine.act(name, 'inspect-done', { actor: agent, runId: inspect.run!.id });
      }
      const held = await t.api('POST', `/api/v1/machines/${name}/actions/boot-installer`, { sshKeys: [KEY] });
      expect(held.statusCode, held.body).toBe(200);
      expect(held.json().run.params.returnTo).toBe(name === 'fwd-14' ? 'available' : 'enrolled');
      const token = /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;
      expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
      expect((await inject('POST', '/agent/v1/ssh', { token, body: { port: 22, hostKeys: [HOST_KEY], addresses: ['10.0.2.15'] } })).statusCode).toBe(200);
      access[name] = (await t.api('GET', `/api/v1/machines/${name}/installer`)).json();
    }
    const pinned = HOST_KEY.split(' ').slice(0, 2).join(' ');
    expect(access['fwd-14']).toMatchObject({ state: 'installer', address: '127.0.0.1', port: 40022, hostKeys: [HOST_KEY], knownHosts: [`[127.0.0.1]:40022 ${pinned}`] });
    expect(access['tap-14']).toMatchObject({ state: 'installer', address: '10.0.2.15', port: 22, knownHosts: [`10.0.2.15 ${pinned}`] });
    // The lab definition gone: the controller falls back to what the installer reported.
    rmSync(lab.path('fwd-14'));
    expect((await t.api('GET', '/api/v1/machines/fwd-14/installer')).json()).toMatchObject({ address: '10.0.2.15', port: 22 });
    // Back where each came from: the uninspected one is still to be inspected.
    expect((await t.api('POST', '/api/v1/machines/fwd-14/actions/exit-installer', {})).json().machine.state).toBe('available');
    expect((await t.api('POST', '/api/v1/machines/tap-14/actions/exit-installer', { to: 'previous' })).json().machine.state).toBe('enrolled');
  });
});

describe('plinth machine boot-installer, installer, exit-installer, rescue, exit-rescue', () => {
  let t: TC;
  let run: ReturnType<typeof cli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-hold-cli-'));
  const keyFile = join(dir, 'id.pub');
  writeFileSync(keyFile, `# the automation's key\n${KEY}\n`);
  writeFileSync(join(dir, 'empty.pub'), '# nothing\n');
  beforeAll(async () => {
    t = await freshController(sqliteBackend, { publicUrl: 'http://10.0.2.2:7708' }, { installer: placeholderInstaller('plinth-hold-cli-') });
    const url = await t.controller.listen();
    run = cli({ PLINTH_URL: url, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  });
  afterAll(async () => t?.close());
  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });

  it('boots the installer with a key file, prints where to SSH and the known_hosts lines, and exits', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'cli-h', identity: { macs: ['52:54:00:14:00:09'] } });
    const engine = t.controller.services.engine;
    const inspect = await engine.act('cli-h', 'inspect', { actor: { kind: 'operator', name: 'test' } });
    await engine.act('cli-h', 'installer-started', { actor: agent, runId: inspect.run!.id });
    await engine.act('cli-h', 'inspect-done', { actor: agent, runId: inspect.run!.id });

    const none = await run('machine', 'boot-installer', 'cli-h');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toBe('plinth: --ssh-key: give at least one public key file\n');
    const empty = await run('machine', 'boot-installer', 'cli-h', '--ssh-key', join(dir, 'empty.pub'));
    expect(empty.stderr).toBe(`plinth: --ssh-key: ${join(dir, 'empty.pub')} holds no public key\n`);
    const bad = await run('machine', 'exit-installer', 'cli-h', '--to', 'nowhere');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.split('\n')).toHaveLength(2);
    expect(bad.stderr).toMatch(/^plinth: --to/);

    const b = await run('machine', 'boot-installer', 'cli-h', '--ssh-key', keyFile);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/^cli-h: installer-booting \(run [0-9a-f-]{36}\); 'plinth machine installer cli-h' says where to SSH once it is up$/m);
    expect((await run('machine', 'installer', 'cli-h')).stdout).toBe('cli-h: installer-booting; the installer has not reported its SSH server yet\n');
    const kh = await run('machine', 'installer', 'cli-h', '--known-hosts');
    expect(kh.code).toBe(1);

    const token = /plinth\.token=(\S+)/.exec((await inject('GET', '/boot/machine.ipxe?mac=52:54:00:14:00:09')).body)![1]!;
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    expect((await inject('POST', '/agent/v1/ssh', { token, body: { port: 2222, hostKeys: [HOST_KEY], addresses: ['192.0.2.7'] } })).statusCode).toBe(200);
    const show = await run('machine', 'installer', 'cli-h');
    expect(show.stdout).toBe(`cli-h: installer; ssh -p 2222 root@192.0.2.7\nhost key: ${HOST_KEY}\n`);
    const lines = await run('machine', 'installer', 'cli-h', '--known-hosts');
    expect(lines.stdout).toBe(`[192.0.2.7]:2222 ${HOST_KEY.split(' ').slice(0, 2).join(' ')}\n`);

    const out = await run('machine', 'exit-installer', 'cli-h');
    expect(out.stdout).toBe('cli-h: available\n');
    const r = await run('machine', 'rescue', 'cli-h', '--ssh-key', keyFile);
    expect(r.stdout).toMatch(/^cli-h: rescue-booting/);
    const back = await run('machine', 'exit-rescue', 'cli-h');
    expect(back.code, back.stderr).toBe(1);
    expect(back.stderr).toBe('plinth: cannot exit-rescue machine cli-h: it is rescue-booting; allowed: abort\n');
  });
});
