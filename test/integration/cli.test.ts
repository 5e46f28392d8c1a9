import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli as cli } from '../support/cli.js';
import { allowedActions } from '../../src/lifecycle/states.js';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

type TC = Awaited<ReturnType<typeof freshController>>;

describe('plinth CLI against a running controller', () => {
  let t: TC;
  let run: ReturnType<typeof cli>;
  beforeAll(async () => {
    t = await freshController(sqliteBackend);
    const url = await t.controller.listen();
    // No PLINTH_TOKEN: the CLI finds the admin token in the data directory, as next to a controller.
    run = cli({ PLINTH_URL: url, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  });
  afterAll(async () => t?.close());

  it('creates, shows, lists, updates machines', async () => {
    const c = await run('machine', 'create', 'cli-1', '--serial', 'SER-CLI-1', '--mac', '52:54:00:c1:00:01', '--tag', 'rack=r9', '--json');
    expect(c.code, c.stderr).toBe(0);
    const created = JSON.parse(c.stdout);
    expect(created).toMatchObject({ name: 'cli-1', state: 'enrolled', tags: { rack: 'r9' } });
    expect(created.identity.macs).toEqual(['52:54:00:c1:00:01']);

    const show = await run('machine', 'show', 'cli-1');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^Name:\s+cli-1$/m);
    expect(show.stdout).toMatch(/^Serial:\s+SER-CLI-1$/m);
    // What the lifecycle allows an operator on an enrolled machine, in its order.
    expect(allowedActions('enrolled')).toEqual(['inspect', 'wipe', 'boot-installer', 'retire']);
    expect(show.stdout).toMatch(/^Allowed:\s+inspect, wipe, boot-installer, retire$/m);

    const list = await run('machine', 'list', '--tag', 'rack=r9');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[1]).toMatch(/^cli-1 enrolled unknown/);

    const u = await run('machine', 'update', 'cli-1', '--tag', 'zone=z1', '--untag', 'rack', '--owner', 'bob', '--json');
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout)).toMatchObject({ tags: { zone: 'z1' }, owner: 'bob' });
    const json = JSON.parse((await run('machine', 'list', '--json', '--search', 'SER-CLI')).stdout);
    expect(json.map((m: any) => m.name)).toEqual(['cli-1']);
  });

  it('sets the boot method per appliance and per machine; machine show prints the one that applies', async () => {
    const reg = await run('appliance', 'register', '--name', 'bmc-cli', '--type', 'redfish', '--address', 'https://192.0.2.9', '--boot-method', 'vmedia');
    expect(reg.code, reg.stderr).toBe(0);
    const appliance = JSON.parse((await run('appliance', 'show', 'bmc-cli', '--json')).stdout);
    expect(appliance.bootMethod).toBe('vmedia');
    const c = await run('machine', 'create', 'cli-vm', '--serial', 'SER-CLI-VM');
    expect(c.code, c.stderr).toBe(0);
    await t.api('PATCH', '/api/v1/machines/cli-vm', { provider: { applianceId: appliance.id, ref: '/redfish/v1/Systems/1' } });
    expect((await run('machine', 'show', 'cli-vm')).stdout).toMatch(/^Boot method:\s+vmedia \(its appliance's\)$/m);
    const u = await run('machine', 'update', 'cli-vm', '--boot-method', 'pxe');
    expect(u.code, u.stderr).toBe(0);
    expect((await run('machine', 'show', 'cli-vm')).stdout).toMatch(/^Boot method:\s+pxe$/m);
    expect((await run('machine', 'update', 'cli-vm', '--boot-method', 'appliance', '--json')).stdout).toMatch(/"bootMethod": ?null/);
    const bad = await run('machine', 'update', 'cli-vm', '--boot-method', 'floppy');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^plinth: --boot-method: 'floppy'/);
  });

  it('refuses to build an installer ISO that would not know the controller URL, before building anything', async () => {
    const r = await run('installer', 'build', '--iso', '--data-dir', t.config.dataDir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^plinth: --iso: the ISO carries the URL the installer reaches the controller at; set publicUrl/)]);
  });

  it('performs actions and shows the history', async () => {
    const a = await run('machine', 'action', 'cli-1', 'inspect', '--reason', 'first look');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^cli-1: inspecting \(run [0-9a-f-]{36}\)$/m);
    const ev = JSON.parse((await run('machine', 'events', 'cli-1', '--json')).stdout);
    expect(ev.map((e: any) => e.action)).toEqual(['enroll', 'update', 'allocate', 'inspect']);
    expect(ev[3].reason).toBe('first look');
  });

  it('exits 1 with one line when the controller refuses', async () => {
    const r = await run('machine', 'action', 'cli-1', 'deploy');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('plinth: cannot deploy machine cli-1: it is inspecting; allowed: abort\n');
    const nf = await run('machine', 'show', 'nope');
    expect(nf.code).toBe(1);
    expect(nf.stderr).toBe("plinth: machine 'nope' not found\n");
    const dup = await run('machine', 'create', 'cli-1');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe("plinth: name 'cli-1' is already in use\n");
    const badMac = await run('machine', 'create', 'cli-2', '--mac', 'nonsense');
    expect(badMac.code).toBe(1);
    expect(badMac.stderr).toBe("plinth: identity.macs[0]: 'nonsense' is not a MAC address\n");
  });

  it('enrolls the machines a file lists in one request (machine create --from), all or none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-cli-bulk-'));
    const file = join(dir, 'rack.yaml');
    writeFileSync(file, 'machines:\n  - name: rack-7-01\n    identity: { serial: R7-01, macs: ["52:54:00:c7:00:01"] }\n  - name: rack-7-02\n    tags: { rack: r7 }\n');
    const ok = await run('machine', 'create', '--from', file);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/rack-7-01/);
    expect(ok.stdout).toMatch(/^2 machine\(s\) enrolled$/m);
    expect((await t.api('GET', '/api/v1/machines/rack-7-02')).json().tags).toEqual({ rack: 'r7' });
    // A list (JSON is YAML too) with one entry taken: nothing of it is enrolled.
    writeFileSync(file, JSON.stringify([{ name: 'rack-7-03' }, { name: 'rack-7-04', identity: { macs: ['52:54:00:c7:00:01'] } }]));
    const dup = await run('machine', 'create', '--from', file);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe("plinth: machines[1].identity.macs '52:54:00:c7:00:01' is already in use (already used by rack-7-01)\n");
    expect((await t.api('GET', '/api/v1/machines/rack-7-03')).statusCode).toBe(404);
    writeFileSync(file, 'nodes: []\n');
    const bad = await run('machine', 'create', '--from', file);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`plinth: ${file}: expected a list of machines, or machines: with one\n`);
    const both = await run('machine', 'create', 'x', '--from', file);
    expect(both.code).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 on usage errors', async () => {
    for (const argv of [
      ['machine', 'action', 'cli-1', 'explode'],
      ['machine', 'frobnicate'],
      ['machine', 'show'],
      ['machine', 'update', 'cli-1'],
      ['machine', 'update', 'cli-1', '--maintenance', 'maybe'],
      ['machine', 'list', '--limit', '-3'],
      ['token', 'create', 'x', '--role', 'root'],
      ['token', 'create', 'x'],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')[0], argv.join(' ')).toMatch(/^(plinth: |error: )/);
    }
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/machine/);
  });

  it('manages tokens', async () => {
    const c = await run('token', 'create', 'ci-reader', '--role', 'reader');
    expect(c.code).toBe(0);
    const secret = c.stdout.trim();
    expect(secret).toMatch(/^plinth_/);
    expect(c.stderr).toMatch(/not shown again/);
    const asReader = cli({ PLINTH_URL: t.controller.url!, PLINTH_TOKEN: secret, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    expect((await asReader('machine', 'list')).code).toBe(0);
    const denied = await asReader('machine', 'create', 'nope-2');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toBe("plinth: token 'ci-reader' has role reader; this needs operator\n");
    const list = JSON.parse((await run('token', 'list', '--json')).stdout);
    expect(list.map((x: any) => x.name)).toEqual(['admin', 'ci-reader']);
    expect(JSON.stringify(list)).not.toContain(secret);
    expect((await run('token', 'revoke', 'ci-reader')).stdout).toBe('revoked ci-reader\n');
    expect((await asReader('machine', 'list')).stderr).toBe('plinth: token is unknown, revoked or expired\n');
  });

  it('says clearly when no controller answers', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dead = cli({ PLINTH_URL: `http://127.0.0.1:${port}`, PLINTH_TOKEN: 'plinth_x', PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    const r = await dead('machine', 'list');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`plinth: cannot reach the controller at http://127.0.0.1:${port} (ECONNREFUSED); is it running? (set PLINTH_URL or --url)\n`);
  });
});
