import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { runAgent } from '../../src/agent/agent.js';
import { parseCmdline } from '../../src/agent/cmdline.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/** The agent's loop against a real controller over HTTP; only the hardware and the power switch are stand-ins. */
describe('agent against a running controller', () => {
  let t: TC;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-agent-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  beforeAll(async () => {
    t = await freshController(sqliteBackend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    url = await t.controller.listen();
  });
  afterAll(async () => t?.close());

  /** Boots a machine as iPXE would and returns the agent configuration its kernel command line carries. */
  async function bootMachine(mac: string, serial: string) {
    const res = await fetch(`${url}/boot/machine.ipxe?serial=${serial}&mac=${mac}`);
    const cmdline = /kernel \S+ (initrd=\S+ .*) \|\| goto/.exec(await res.text())![1]!;
    return parseCmdline(cmdline)!;
  }

  it('says hello, inspects, reports, ships its log and powers off as told', async () => {
    const config = await bootMachine('52:54:00:a6:00:01', 'AGENT-1');
    const powered: string[] = [];
    const consoleLines: string[] = [];
    const outcome = await runAgent({
      config,
      version: 'test',
      inspect: async (log) => {
        log('inspection: ipmitool: no BMC found');
        return makeFacts({ serial: 'AGENT-1', macs: ['52:54:00:a6:00:01'], disks: [['vda', 10 * 2 ** 30]] });
      },
      power: { poweroff: async () => void powered.push('off'), reboot: async () => void powered.push('reboot') },
      console: (l) => consoleLines.push(l),
    });
    expect(outcome).toEqual({ result: 'done', next: 'poweroff' });
    expect(powered).toEqual(['off']);
    const m = (await t.api('GET', '/api/v1/machines?q=AGENT-1&include=facts')).json().items[0];
    expect(m.state).toBe('available');
    expect(m.facts.disks).toEqual([{ name: 'vda', sizeBytes: 10 * 2 ** 30, model: null, serial: null, wwn: null, rotational: true }]);
    const log = (await t.api('GET', `/api/v1/runs/${config.runId}/log`)).json().items.map((l: any) => l.line);
    expect(log[0]).toMatch(new RegExp(`^hello: machine ${m.name}, inspect run ${config.runId}$`));
    expect(log).toContain('inspection: ipmitool: no BMC found');
    expect(log.some((l: string) => /^inspected in [\d.]+ s: 1 threads, 1024 MiB \(smbios\), 1 disk\(s\), 1 NIC\(s\), 5 hw lines$/.test(l))).toBe(true);
    expect(consoleLines[0]).toMatch(/^plinth-agent: hello: machine /);
    const stages = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json().attempts[0].stages.map((s: any) => s.stage);
    expect(stages).toEqual(['machine-script', 'agent-hello', 'facts']);
  });

  it('keeps its run when someone boots with its identity while it works', async () => {
    const config = await bootMachine('52:54:00:a6:00:05', 'AGENT-5');
    let impostorScript = '';
    const outcome = await runAgent({
      config,
      version: 'test',
      inspect: async () => {
        // Mid-run, another client sends this machine's identity to the boot endpoint.
        impostorScript = await (await fetch(`${url}/boot/machine.ipxe?serial=AGENT-5&mac=52:54:00:a6:00:05`)).text();
        return makeFacts({ serial: 'AGENT-5', macs: ['52:54:00:a6:00:05'] });
      },
      power: { poweroff: async () => undefined, reboot: async () => undefined },
      console: () => undefined,
    });
    expect(impostorScript).not.toContain('plinth.token=');
    expect(impostorScript).toContain('already held by the installer that claimed it');
    expect(outcome).toEqual({ result: 'done', next: 'poweroff' });
    expect((await t.api('GET', '/api/v1/machines?q=AGENT-5')).json().items[0].state).toBe('available');
  });

  it('reports an inspection that fails, and the machine lands in inspect-failed', async () => {
    const config = await bootMachine('52:54:00:a6:00:02', 'AGENT-2');
    const outcome = await runAgent({
      config,
      version: 'test',
      inspect: async () => {
        throw new Error('lsblk: device busy');
      },
      power: { poweroff: async () => undefined, reboot: async () => undefined },
      console: () => undefined,
    });
    expect(outcome).toEqual({ result: 'failed', message: 'lsblk: device busy' });
    const m = (await t.api('GET', '/api/v1/machines?q=AGENT-2')).json().items[0];
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'agent', message: 'lsblk: device busy', stage: 'agent-failed' });
  });

  it('stops at once when its token is refused', async () => {
    const config = await bootMachine('52:54:00:a6:00:03', 'AGENT-3');
    const outcome = await runAgent({
      config: { ...config, token: 'plrun_forged' },
      version: 'test',
      inspect: async () => makeFacts(),
      power: { poweroff: async () => undefined, reboot: async () => undefined },
      console: () => undefined,
      sleep: async () => undefined,
    });
    expect(outcome).toEqual({ result: 'rejected', message: '/agent/v1/hello: HTTP 401: run token is unknown, superseded, or its run has ended' });
  });

  it('retries while the controller is unreachable', async () => {
    const calls: string[] = [];
    let failures = 3;
    const flaky: typeof fetch = async (input, init) => {
      calls.push(String(input));
      if (failures-- > 0) throw new TypeError('fetch failed');
      return fetch(input, init);
    };
    const config = await bootMachine('52:54:00:a6:00:04', 'AGENT-4');
    const outcome = await runAgent({
      config,
      version: 'test',
      inspect: async () => makeFacts({ serial: 'AGENT-4', macs: ['52:54:00:a6:00:04'] }),
      power: { poweroff: async () => undefined, reboot: async () => undefined },
      console: () => undefined,
      fetch: flaky,
      sleep: async () => undefined,
    });
    expect(outcome.result).toBe('done');
    expect(calls.slice(0, 4).every((c) => c.endsWith('/agent/v1/hello'))).toBe(true);
  });
});

describe('agent held in the installer for work over SSH', () => {
  let t: TC;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-agent-hold-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcmhvbGQx automation@test';
  const HOST = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3RrZXlnZW5lcmF0ZWRhdHRoaXNib290MTIz';
  beforeAll(async () => {
    t = await freshController(sqliteBackend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    url = await t.controller.listen();
  });
  afterAll(async () => t?.close());
  const boot = async (mac: string) => {
    const res = await fetch(`${url}/boot/machine.ipxe?mac=${mac}`);
    return parseCmdline(/kernel \S+ (initrd=\S+ .*) \|\| goto/.exec(await res.text())![1]!)!;
  };

  it('starts its SSH server with the keys from the hello, reports it, and waits', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'held-1', identity: { macs: ['52:54:00:a6:00:31'] } });
    const engine = t.controller.services.engine;
    const agent = { kind: 'agent' as const, name: 'test' };
    const inspect = await engine.act('held-1', 'inspect', { actor: { kind: 'operator', name: 'test' } });
    await engine.act('held-1', 'installer-started', { actor: agent, runId: inspect.run!.id });
    await engine.act('held-1', 'inspect-done', { actor: agent, runId: inspect.run!.id });
    expect((await t.api('POST', '/api/v1/machines/held-1/actions/boot-installer', { sshKeys: [KEY] })).statusCode).toBe(200);
    const config = await boot('52:54:00:a6:00:31');
    const given: string[][] = [];
    let held = false;
    const outcome = await runAgent({
      config,
      version: 'test',
      inspect: async () => makeFacts(),
      power: { poweroff: async () => undefined, reboot: async () => undefined },
      console: () => undefined,
      sshServer: async (params) => (given.push(params.authorizedKeys), { port: 22, hostKeys: [HOST], addresses: ['192.0.2.9'] }),
      hold: async () => void (held = true),
    });
    expect(outcome).toEqual({ result: 'done', next: 'wait' });
    expect(given).toEqual([[KEY]]);
    expect(held).toBe(true);
    const access = (await t.api('GET', '/api/v1/machines/held-1/installer')).json();
    expect(access).toMatchObject({ state: 'installer', address: '192.0.2.9', port: 22, knownHosts: [`192.0.2.9 ${HOST}`] });
    const log = (await t.api('GET', `/api/v1/runs/${config.runId}/log`)).json().items.map((l: any) => l.line);
    expect(log).toContain('held for work over SSH on port 22');
  });
});
