/**
 * Tateru's client against Plinth: test/fixtures/tateru/client-calls.py reproduces the calls
 * Tateru's published client and Ansible modules make (find by alias, read managedBy,
 * boot-installer with the key, poll for the installer's address), with Debian's python3 and
 * python3-requests, which take HTTP Basic credentials from ~/.netrc — the API token as the
 * password. Meanwhile the test plays the installer's side (hello, SSH server report).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, placeholderInstaller } from '../support/controller.js';
import { ensureDebianPackages } from '../support/peers/debian-packages.js';
import { availableMachine, installerUp, type HeldMachineIdentity } from '../support/held-installer.js';
import { fetchHttp } from './matching-support.js';
import { spawnSync } from 'node:child_process';

const run = promisify(execFile);
type TC = Awaited<ReturnType<typeof freshController>>;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx tateru@test';
const M: HeldMachineIdentity = { index: 1411, uuid: '7d0c6f0e-5a8e-4f8a-9d7b-3c1f2e4a1411' };
const SCRIPT = resolve('test/fixtures/tateru/client-calls.py');
const hasRequests = () => spawnSync('/usr/bin/python3', ['-c', 'import requests'], { stdio: 'ignore' }).status === 0;

describe.each(backends)("Tateru's client calls with ~/.netrc on $name", (backend) => {
  let t: TC;
  let url: string;
  let name: string;
  const home = mkdtempSync(join(tmpdir(), 'plinth-tateru-home-'));

  beforeAll(async () => {
    ensureDebianPackages(['python3-requests'], hasRequests);
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { installer: placeholderInstaller('plinth-tateru-') });
    url = await t.controller.listen();
    await availableMachine(fetchHttp(url), M);
    name = (await t.api('GET', '/api/v1/machines')).json().items[0].name;
  });
  afterAll(async () => t?.close());

  const client = (netrc: string | null) => {
    if (netrc === null) writeFileSync(join(home, '.netrc'), '');
    else writeFileSync(join(home, '.netrc'), netrc);
    chmodSync(join(home, '.netrc'), 0o600);
    return run('/usr/bin/python3', [SCRIPT, name, KEY], { env: { PATH: '/usr/bin:/bin', HOME: home, TATERU_SVC: url, WAIT_SECONDS: '120' }, timeout: 180_000 }).then(
      (r) => ({ code: 0, out: JSON.parse(r.stdout) }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout ? JSON.parse(e.stdout) : e.stderr }),
    );
  };
  const host = () => new URL(url).hostname;

  it('without credentials, or with a wrong password, the first call is refused and nothing happens', async () => {
    expect(await client(null)).toEqual({ code: 2, out: expect.objectContaining({ refused: expect.objectContaining({ call: 'find', status: 401 }) }) });
    expect(await client(`machine ${host()} login ansible password not-the-token\n`)).toEqual({ code: 2, out: expect.objectContaining({ refused: expect.objectContaining({ call: 'find', status: 401 }) }) });
    expect((await t.api('GET', `/api/v1/machines/${name}`)).json().state).toBe('available');
  });

  it("boots the machine into the installer and reads the installer's address, the token coming from ~/.netrc", async () => {
    const calls = client(`machine ${host()} login ansible password ${t.adminToken}\n`);
    // The installer's side: once the machine is told to boot, it comes up and reports its SSH server.
    for (let i = 0; i < 600 && (await t.api('GET', `/api/v1/machines/${name}`)).json().state !== 'installer-booting'; i++) await new Promise((r) => setTimeout(r, 100));
    await installerUp(fetchHttp(url), M, { port: 2201, addresses: ['192.0.2.77'] });
    const { code, out } = await calls;
    expect(code, JSON.stringify(out)).toBe(0);
    expect(out.found).toEqual([{ uuid: M.uuid, serialNumber: 'CZ00001411', name, managedBy: url }]);
    expect(out.managedBy).toBe(url);
    expect(out.statuses.slice(0, 3)).toEqual([
      ['find', 200],
      ['get', 200],
      ['boot-installer', 200],
    ]);
    expect({ address: out.address, port: out.port }).toEqual({ address: '192.0.2.77', port: 2201 });
    const m = (await t.api('GET', `/api/v1/machines/${name}`)).json();
    expect(m.state).toBe('installer');
    const run = (await t.api('GET', `/api/v1/runs/${m.currentRunId}`)).json();
    expect(run).toMatchObject({ kind: 'installer', params: { authorizedKeys: [KEY] } });
    const ev = (await t.api('GET', `/api/v1/machines/${name}/events`)).json().items.find((e: any) => e.action === 'boot-installer');
    expect(ev).toMatchObject({ actor: 'operator:admin', reason: 'boot-installer (Tateru API)' });
  });
});
