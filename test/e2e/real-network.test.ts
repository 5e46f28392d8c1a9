import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Vm } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { sharedInstaller, waitFor } from '../support/e2e.js';
import { BIN, startServe, type ServeProcess } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';

/**
 * A machine on a real provisioning network: a bridge in network namespaces, `plinth serve
 * --dhcp full` (a real process, started from the CLI) in namespace `ctl` with its supervised
 * dnsmasq, and one BIOS VM (QEMU's iPXE ROM) on a tap on the bridge. Nothing but Plinth's
 * dnsmasq tells the VM where to boot; it must end `available`, with a boot trace that starts
 * with the DHCP stage.
 */
const run = promisify(execFile);
const canRun = isRoot() || process.env.CI === 'true';
const GiB = 2 ** 30;

describe.skipIf(!canRun)('a BIOS machine on a provisioning network where Plinth is the DHCP server', () => {
  let net: TestNetwork;
  let serve: ServeProcess;
  let vm: Vm;
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net-'));
  const vmDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net-vm-'));
  const port = 7708;
  const mac = '52:54:00:e2:10:01';
  // The controller is reached from inside its namespace only: the CLI runs there too.
  const cli = async (...args: string[]) => {
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const { stdout } = await run('ip', ['netns', 'exec', net.ns('ctl'), process.execPath, BIN, ...args, '--json'], { env: { ...process.env, PLINTH_URL: `http://10.78.0.1:${port}`, PLINTH_TOKEN: token } });
    return JSON.parse(stdout);
  };

  beforeAll(async () => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    const files = await sharedInstaller();
    mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
    symlinkSync(files.kernel, join(dataDir, 'boot', 'installer', 'vmlinuz'));
    symlinkSync(files.initrd, join(dataDir, 'boot', 'installer', 'initrd.img'));
    chmodSync(dataDir, 0o711); // dnsmasq reads its hosts directory as an unprivileged user
    net = createTestNetwork({ ctl: '10.78.0.1/24' });
    net.addTap('tap0');
    serve = await startServe(
      { PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `0.0.0.0:${port}`, PLINTH_LOG_LEVEL: 'info' },
      ['--dhcp', 'full', '--dhcp-interface', 'eth0', '--dhcp-range', '10.78.0.100,10.78.0.150'],
      { prefix: ['ip', 'netns', 'exec', net.ns('ctl')] },
    );
    await serve.waitForLog((l) => l.msg === 'DHCP (dnsmasq) started');
  }, 600_000);

  afterAll(async () => {
    await vm?.stop();
    await serve?.stop();
    net?.remove();
    rmSync(vmDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('boots through DHCP, is enrolled and inspected, and its trace starts with the DHCP answer', async () => {
    vm = new Vm(
      { name: 'vm-net', firmware: 'bios', memoryMiB: 1536, disks: [{ path: join(vmDir, 'd0.qcow2'), sizeBytes: 3 * GiB }], nics: [{ mac, tap: 'tap0' }] },
      { dir: vmDir, launcher: ['ip', 'netns', 'exec', net.ns('core'), ...TEST_QEMU_LAUNCHER] },
    );
    await vm.start();
    await vm.waitForExit(10 * 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; console tail:\n${vm.serialOutput().slice(-3000)}\ncontroller: ${JSON.stringify(serve.logs.slice(-10))}`);
    });
    const machine = await waitFor('the machine', 30_000, async () => ((await cli('machine', 'list')) as { name: string; state: string; identity: { macs: string[] } }[]).find((m) => m.identity.macs.includes(mac)));
    expect(machine.state).toBe('available');
    const trace = await cli('machine', 'trace', machine.name);
    // One boot: iPXE's DHCP answer, its requests, the installer's own DHCP, the agent.
    expect(trace.attempts, JSON.stringify(trace)).toHaveLength(1);
    const stages = trace.attempts[0].stages as { stage: string; detail: Record<string, unknown> }[];
    const names = stages.map((s) => s.stage);
    expect(names.filter((s) => s !== 'dhcp').slice(0, 2)).toEqual(['chain-script', 'machine-script']);
    expect(stages.find((s) => s.stage === 'dhcp')!.detail).toMatchObject({ event: 'ack', client: 'ipxe', mac, bootFile: `http://10.78.0.1:${port}/boot.ipxe` });
    expect(stages.filter((s) => s.stage === 'dhcp').map((s) => s.detail.client)).toEqual(['ipxe', 'other']);
    expect(names).toContain('kernel');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
  }, 900_000);
});
