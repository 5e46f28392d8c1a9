/**
 * The collection's modules (ansible/plugins/modules: installer, machine_info) run by Debian's
 * ansible-core against a real controller: a playbook holds a machine in the installer with its
 * key and waits for the address, port and pinned host keys (the installer's side is played
 * over HTTP by test/support/held-installer.ts); held twice is changed once; check mode changes
 * nothing; exit_to=deployed boots the disk through the machine's appliance (a Redfish service)
 * and waits for deployed; machine_info reads the machine; a refused token is the module's
 * failure with the controller's reason.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';
import { backends } from '../support/backends.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import type { RedfishPeer } from '../support/peers/redfish-server.js';
import { heldInstallerController, installerUp, INSTALLER_HOST_KEY } from '../support/held-installer.js';
import { fetchHttp } from './matching-support.js';

const run = promisify(execFile);
type TC = Awaited<ReturnType<typeof heldInstallerController>>['t'];
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx playbook@test';
const agent = { kind: 'agent' as const, name: 'installer' };
const INSTALLED_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGluc3RhbGxlZG9zaG9zdGtleXdyaXR0ZW5ieXBsYXkx root@installed';

describe.each(backends)('ansible modules on $name', (backend) => {
  let t: TC;
  let url: string;
  let peer: RedfishPeer;
  let mac: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-ansible-mod-'));

  /** Runs a playbook of these tasks on localhost; the results of each task, in order. */
  async function playbook(tasks: object[], opts: { check?: boolean; token?: string } = {}): Promise<{ code: number; results: any[]; stderr: string }> {
    const file = join(dir, `play-${Date.now()}.yml`);
    writeFileSync(file, JSON.stringify([{ hosts: 'localhost', connection: 'local', gather_facts: false, tasks }]));
    const args = ['-i', 'localhost,', file, ...(opts.check ? ['--check'] : [])];
    const env = {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      ANSIBLE_COLLECTIONS_PATH: join(dir, 'collections'),
      // Debian's ansible-core has no `json` callback (ansible.posix has): the test's own.
      ANSIBLE_CALLBACK_PLUGINS: resolve('test/fixtures/ansible/callback_plugins'),
      ANSIBLE_STDOUT_CALLBACK: 'task_results',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
      ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'),
      ANSIBLE_NOCOLOR: '1',
      PLINTH_URL: url,
      PLINTH_TOKEN: opts.token ?? t.adminToken,
    };
    const r = await run('ansible-playbook', args, { env, timeout: 300_000 }).then(
      (x) => ({ code: 0, stdout: x.stdout, stderr: x.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
    const out = JSON.parse(r.stdout);
    return { code: r.code, results: out.plays[0].tasks.map((task: any) => task.hosts.localhost), stderr: r.stderr };
  }
  /** The inventory plugin's host variables of mod-1. */
  async function inventoryHost(): Promise<any> {
    writeFileSync(join(dir, 'plinth.yml'), 'plugin: plinth.metal.plinth\nwith_facts: false\n');
    const inv = await run('ansible-inventory', ['-i', join(dir, 'plinth.yml'), '--host', 'mod-1'], {
      env: { PATH: '/usr/bin:/bin', HOME: dir, ANSIBLE_COLLECTIONS_PATH: join(dir, 'collections'), ANSIBLE_INVENTORY_ENABLED: 'plinth.metal.plinth', ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true', ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'), PLINTH_URL: url, PLINTH_TOKEN: t.adminToken },
      timeout: 120_000,
    });
    return JSON.parse(inv.stdout);
  }
  const machine = async () => (await t.api('GET', '/api/v1/machines/mod-1')).json();
  async function until(ok: (m: any) => boolean): Promise<any> {
    let m = await machine();
    for (let i = 0; i < 1200 && !ok(m); i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = await machine();
    }
    return m;
  }

  beforeAll(async () => {
    ensureDebianPackages(['ansible-core'], () => hasCommand('ansible-playbook'));
    mkdirSync(join(dir, 'collections', 'ansible_collections', 'plinth'), { recursive: true });
    symlinkSync(resolve('ansible'), join(dir, 'collections', 'ansible_collections', 'plinth', 'metal'));
    ({ t, peer } = await heldInstallerController(backend));
    url = await t.controller.listen();
    // A machine behind a Redfish BMC, inspected (the way an inspection ends): available.
    expect((await t.api('POST', '/api/v1/appliances', { name: 'bmc-mod', type: 'redfish', address: peer.url, username: 'root', password: 'calvin' })).statusCode).toBe(201);
    const [e] = (await t.api('POST', '/api/v1/appliances/bmc-mod/enlist', {})).json().items;
    await t.api('PATCH', `/api/v1/machines/${e.machine.id}`, { name: 'mod-1' });
    mac = e.machine.identity.macs[0];
    const r = await t.api('POST', '/api/v1/machines/mod-1/actions/inspect', {});
    expect(r.statusCode, r.body).toBe(200);
    await t.controller.services.engine.act('mod-1', 'installer-started', { actor: agent, runId: r.json().run.id });
    await t.controller.services.engine.act('mod-1', 'inspect-done', { actor: agent, runId: r.json().run.id });
    expect((await machine()).state).toBe('available');
  }, 300_000);
  afterAll(async () => {
    await t?.close();
    await peer?.close();
  });

  const held = { name: 'mod-1', ssh_public_key: KEY, wait_timeout: 120 };
  /** Each playbook starts Ansible anew (seconds each on a busy machine). */
  const it = (name: string, fn: () => Promise<void>) => vitestIt(name, fn, 300_000);

  it('check mode: held and machine_info report, nothing changes', async () => {
    // What an action would change: the state, the runs, the operator's events (power readings go on by themselves).
    const seen = async () => ({
      state: (await machine()).state,
      runs: (await t.api('GET', '/api/v1/machines/mod-1/runs')).json().items.map((r: any) => r.id),
      actions: (await t.api('GET', '/api/v1/machines/mod-1/events')).json().items.filter((e: any) => e.actor.startsWith('operator:')).length,
    });
    const before = await seen();
    const { code, results } = await playbook([{ 'plinth.metal.installer': held }, { 'plinth.metal.machine_info': { name: 'mod-1' } }], { check: true });
    expect(code).toBe(0);
    expect(results[0]).toMatchObject({ changed: true, state: 'installer-booting', address: null });
    expect(results[1]).toMatchObject({ changed: false, state: 'available', installer: null, installed_address: null });
    expect(await seen()).toEqual(before);
  });

  it('held: boots the installer, waits for its address and host keys; held again changes nothing', async () => {
    const play = playbook([{ 'plinth.metal.installer': held }, { 'plinth.metal.installer': held }, { 'plinth.metal.machine_info': { name: 'mod-1' } }]);
    // The installer's side: the machine is told to boot, comes up and reports its SSH server.
    expect((await until((m) => m.state !== 'available')).state).toBe('installer-booting');
    await installerUp(fetchHttp(url), { mac }, { port: 2222, addresses: ['127.0.0.1'] });
    const { code, results, stderr } = await play;
    expect(code, stderr + JSON.stringify(results)).toBe(0);
    const line = `[127.0.0.1]:2222 ${INSTALLER_HOST_KEY.split(' ').slice(0, 2).join(' ')}`;
    const m = await machine();
    expect(results[0]).toMatchObject({ changed: true, state: 'installer', address: '127.0.0.1', port: 2222, user: 'root', host_keys: [INSTALLER_HOST_KEY], known_hosts: [line], run: m.currentRunId });
    expect(results[1]).toMatchObject({ changed: false, state: 'installer', address: '127.0.0.1', port: 2222, known_hosts: [line], run: m.currentRunId });
    expect(results[2]).toMatchObject({ changed: false, state: 'installer', installer: { address: '127.0.0.1', port: 2222, knownHosts: [line] } });
    expect(results[2].facts_summary).toBeNull();
    const runs = (await t.api('GET', '/api/v1/machines/mod-1/runs')).json().items.filter((r: any) => r.kind === 'installer');
    expect(runs).toHaveLength(1);
    // The inventory plugin's host variables carry the held installer and its pinned host key.
    expect(await inventoryHost()).toMatchObject({ plinth_state: 'installer', plinth_installer: { address: '127.0.0.1', port: 2222, user: 'root', host_keys: [INSTALLER_HOST_KEY], known_hosts: [line] } });
    // Held with another key: refused, not re-booted.
    const other = await playbook([{ 'plinth.metal.installer': { ...held, ssh_public_key: KEY.replace('playbook@test', 'x').replace('AAAAIGx5', 'AAAAIGx6') } }]);
    expect(other.code).not.toBe(0);
    expect(other.results[0].msg).toBe('machine mod-1 is already held in installer with other keys; exit it first');
  });

  it('absent: check mode leaves it held; exit_to=deployed boots the disk and waits for deployed; absent again changes nothing', async () => {
    const absent = { name: 'mod-1', state: 'absent', exit_to: 'deployed', wait_timeout: 120, installed_host_keys: [INSTALLED_HOST_KEY] };
    const dry = await playbook([{ 'plinth.metal.installer': absent }], { check: true });
    expect(dry.results[0]).toMatchObject({ changed: true, state: 'installer' });
    expect((await machine()).state).toBe('installer');
    const { code, results, stderr } = await playbook([{ 'plinth.metal.installer': absent }, { 'plinth.metal.installer': absent }, { 'plinth.metal.machine_info': { name: 'mod-1' } }]);
    expect(code, stderr + JSON.stringify(results)).toBe(0);
    // The installed OS's host key the playbook gave, pinned where the installer was reached.
    const pinned = `[127.0.0.1]:2222 ${INSTALLED_HOST_KEY.split(' ').slice(0, 2).join(' ')}`;
    expect(results[0]).toMatchObject({ changed: true, state: 'deployed', address: null, installed_known_hosts: [pinned] });
    expect(results[1]).toMatchObject({ changed: false, state: 'deployed' });
    expect(results[2]).toMatchObject({ changed: false, state: 'deployed', installer: null });
    expect((peer.system() as { Boot: { BootSourceOverrideTarget: string } }).Boot.BootSourceOverrideTarget).toBe('Hdd');
    expect((await machine()).deployment.hostKeys).toEqual([INSTALLED_HOST_KEY.split(' ').slice(0, 2).join(' ')]);
    // Once the installed OS is known at an address (what it reported in with, set here as the store keeps it),
    // the inventory pins its host key there.
    const { updateMachineRow } = await import('../../src/inventory/machine-rows.js');
    await updateMachineRow(t.controller.services.store.db, (await machine()).id, { deployed_address: '192.0.2.26' }, new Date().toISOString());
    const inv = await inventoryHost();
    expect(inv).toMatchObject({ ansible_host: '192.0.2.26', plinth_state: 'deployed', plinth_known_hosts: [`192.0.2.26 ${INSTALLED_HOST_KEY.split(' ').slice(0, 2).join(' ')}`] });
    expect(inv).not.toHaveProperty('plinth_installer');
  });

  it('rescue: a deployed machine is held in rescue with the key, then goes back to deployed', async () => {
    const rescue = { name: 'mod-1', mode: 'rescue', ssh_public_key: KEY, wait_timeout: 120 };
    const play = playbook([{ 'plinth.metal.installer': rescue }]);
    expect((await until((m) => m.state !== 'deployed')).state).toBe('rescue-booting');
    const up = await installerUp(fetchHttp(url), { mac }, { port: 2223, addresses: ['127.0.0.1'] });
    expect(up.authorizedKeys).toEqual([KEY]);
    const { code, results, stderr } = await play;
    expect(code, stderr + JSON.stringify(results)).toBe(0);
    expect(results[0]).toMatchObject({ changed: true, state: 'rescue', address: '127.0.0.1', port: 2223, host_keys: [INSTALLER_HOST_KEY] });
    const back = await playbook([{ 'plinth.metal.installer': { name: 'mod-1', mode: 'rescue', state: 'absent' } }, { 'plinth.metal.installer': { name: 'mod-1', mode: 'rescue', state: 'absent', exit_to: 'deployed' } }]);
    expect(back.results[0]).toMatchObject({ changed: true, state: 'deployed' });
    expect(back.results[1].msg).toBe('exit_to: a rescue always goes back to the previous state');
    expect((await machine()).state).toBe('deployed');
  });

  it("ansible-doc reads each module's documentation, the shared connection options included", async () => {
    const modules = ['plinth.metal.installer', 'plinth.metal.machine_info'];
    const { stdout } = await run('ansible-doc', ['--json', ...modules], {
      env: { PATH: '/usr/bin:/bin', HOME: dir, ANSIBLE_COLLECTIONS_PATH: join(dir, 'collections'), ANSIBLE_LOCAL_TEMP: join(dir, 'tmp') },
      timeout: 120_000,
    });
    for (const module of modules) {
      const doc = JSON.parse(stdout)[module];
      expect(Object.keys(doc.doc.options)).toEqual(expect.arrayContaining(['name', 'url', 'token', 'validate_certs', 'ca_path', 'timeout']));
      expect(doc.examples).toContain(module);
      expect(Object.keys(doc.return)).toContain('state');
    }
  });

  it("a refused token or an unknown machine fails the task with the controller's reason", async () => {
    const bad = await playbook([{ 'plinth.metal.machine_info': { name: 'mod-1' } }], { token: 'not-a-token' });
    expect(bad.code).not.toBe(0);
    expect(bad.results[0].msg).toBe('plinth: GET /api/v1/machines/mod-1 failed: HTTP 401: token is unknown, revoked or expired');
    const refused = await playbook([
      { 'plinth.metal.installer': { ...held, name: 'no-such-machine' }, ignore_errors: true },
      { 'plinth.metal.installer': { name: 'mod-1' }, ignore_errors: true },
    ]);
    expect(refused.results[0]).toMatchObject({ failed: true, msg: "plinth: GET /api/v1/machines/no-such-machine failed: HTTP 404: machine 'no-such-machine' not found" });
    expect(refused.results[1]).toMatchObject({ failed: true, msg: 'state is held but all of the following are missing: ssh_public_key' });
  });
});
