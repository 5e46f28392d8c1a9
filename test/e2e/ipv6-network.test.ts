import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { linkSharedInstaller, namespaceCli } from '../support/netns-controller.js';
import type { TraceEntry } from '../../src/runs/trace.js';
import { waitFor } from '../support/e2e.js';
import { startServe, type ServeProcess } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * A machine on an IPv6-only provisioning network: a bridge between network namespaces with no
 * IPv4 address anywhere, `plinth serve --listen [::]:7708 --dhcp full` with an IPv6 range in
 * namespace `ctl` (its dnsmasq a DHCPv6 server sending router advertisements), and one BIOS VM
 * on a tap on the bridge. QEMU's iPXE ROM (Debian's ipxe-qemu) does IPv6: it takes a DHCPv6
 * address and the script URL (`http://[fd78::1]:7708/boot.ipxe`, DHCPv6 option 59), fetches
 * the script, kernel and initramfs over IPv6; the installer takes a DHCPv6 and a SLAAC address
 * (dhcpcd) and its agent talks to the controller over IPv6 only. The VM must end `available`
 * with its facts, which report the DHCPv6 address.
 */
const canRun = isRoot() || process.env.CI === 'true';
const GiB = 2 ** 30;
const PORT = 7708;
const BASE = `http://[fd78::1]:${PORT}`;
/** The range dnsmasq hands out over DHCPv6; a SLAAC address is EUI-64 (…:5054:ff:fe…) instead. */
const DHCPV6_RANGE = /^fd78::1[0-9a-f]{2}$/;

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe.skipIf(!canRun)('a BIOS machine on an IPv6-only provisioning network (DHCPv6 from Plinth)', () => {
  let net: TestNetwork;
  let serve: ServeProcess | null = null;
  let vm: Vm | null = null;
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net6-'));
  const vmDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net6-vm-'));
  // The controller is reached from inside its namespace only, over IPv6: the CLI runs there too.
  const cli = namespaceCli({ net: () => net, ns: 'ctl', dataDir, url: () => BASE });

  beforeAll(async () => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    await linkSharedInstaller(dataDir);
    net = createTestNetwork({ ctl: 'fd78::1/64' });
    net.addTap('tap0');
    serve = await startServe(
      { PLINTH_DATA_DIR: dataDir, PLINTH_LOG_LEVEL: 'info' },
      ['--listen', `[::]:${PORT}`, '--dhcp', 'full', '--dhcp-interface', 'eth0', '--dhcp-range', 'fd78::100,fd78::1ff,64'],
      { prefix: net.prefix('ctl') },
    );
    await serve.waitForLog((l) => l.msg === 'DHCP (dnsmasq) started');
  }, 900_000);

  afterAll(async () => {
    await vm?.stop();
    await serve?.stop();
    net?.remove();
    rmSync(vmDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('boots over IPv6 only, is enrolled and inspected, and reports its DHCPv6 address', async () => {
    // No IPv4 on the network at all: nothing could answer the VM over IPv4.
    expect(net.exec('ctl', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).toBe('');
    const mac = '52:54:00:e2:60:05';
    vm = new Vm(
      {
        name: 'vm-ipv6',
        firmware: 'bios',
        memoryMiB: 1536,
        smbios: { serial: 'NET-IPV6-5', uuid: '5c0e0005-0000-4000-8000-00000000e205' },
        disks: [{ path: join(vmDir, 'd0.qcow2'), sizeBytes: 3 * GiB }],
        nics: [{ mac, tap: 'tap0' }],
      },
      { dir: vmDir, launcher: [...net.prefix('core'), ...TEST_QEMU_LAUNCHER] },
    );
    await vm.start();
    await vm.waitForExit(10 * 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; console tail:\n${vm!.serialOutput().slice(-3000)}\ncontroller: ${JSON.stringify(serve!.logs.slice(-10))}`);
    });
    const console_ = vm.serialOutput();
    vm = null;
    const listed = await waitFor('the machine', 30_000, async () => ((await cli('machine', 'list')) as { name: string; identity: { macs: string[] } }[]).find((m) => m.identity.macs.includes(mac)));
    const machine = (await cli('machine', 'show', listed.name)) as {
      state: string;
      identity: { serial: string | null };
      facts: { nics: { mac: string; ipv4: string[]; ipv6: string[] }[] } | null;
    };
    expect(machine.state).toBe('available');
    expect(machine.identity.serial).toBe('NET-IPV6-5');
    const nic = machine.facts!.nics.find((n) => n.mac === mac)!;
    expect(nic.ipv4).toEqual([]);
    // The installer's DHCPv6 address from the range, and its SLAAC one beside it.
    expect(nic.ipv6.some((a) => DHCPV6_RANGE.test(a)), JSON.stringify(nic)).toBe(true);
    expect(nic.ipv6).toContain('fd78::5054:ff:fee2:6005');
    // The installer was told the controller's IPv6 URL and reached it there.
    expect(console_).toContain(`controller ${BASE}`);

    const trace = await cli('machine', 'trace', listed.name);
    expect(trace.attempts, JSON.stringify(trace)).toHaveLength(1);
    const stages = trace.attempts[0].stages as TraceEntry[];
    const names = stages.map((s) => s.stage);
    // The trace starts with iPXE's DHCPv6 answer: its address and the script URL with the IPv6 literal.
    expect(names[0]).toBe('dhcp');
    expect(stages[0]!.detail).toMatchObject({ event: 'ack', client: 'ipxe', mac, bootFile: `${BASE}/boot.ipxe` });
    expect(stages[0]!.detail?.address).toMatch(DHCPV6_RANGE);
    expect(names.filter((s) => s !== 'dhcp').slice(0, 2)).toEqual(['chain-script', 'machine-script']);
    expect(names).toContain('kernel');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
  }, 900_000);
});
