import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, type VmNic, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { linkSharedInstaller, namespaceCli } from '../support/netns-controller.js';
import type { TraceEntry } from '../../src/runs/trace.js';
import { waitFor } from '../support/e2e.js';
import { freePort, startServe, type ServeProcess } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';
import { startSiteDhcp, type SiteDhcp } from '../support/peers/site-dhcp.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { redfishVm, type RedfishVm } from '../support/peers/redfish-vm.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * Machines on a real provisioning network: a bridge between network namespaces, `plinth serve`
 * (a real process, started from the CLI) in namespace `ctl` with its supervised dnsmasq, a
 * stand-in for the site's DHCP server (a separate dnsmasq) in namespace `site`, and VMs, one at
 * a time, on a tap on the bridge, each with its own SMBIOS identity. Nothing but DHCP on that
 * network tells a VM where to boot; each must end `available` with its facts, and a boot trace
 * that starts with the DHCP stage. The network and the controller's data are shared; each
 * scenario restarts the controller with its DHCP mode. The last has no DHCP server at all: the
 * controller runs on this side of the bridge (a veth into it), next to the Redfish test service
 * whose VM boots the installer ISO from its virtual CD, the machine's static address on it.
 */
const canRun = isRoot() || process.env.CI === 'true';
const GiB = 2 ** 30;
const PORT = 7708;
const SCRIPT_URL = `http://10.78.0.1:${PORT}/boot.ipxe`;
/** The site server's range: an address from it proves the site, not Plinth, gave it. */
const SITE_RANGE = /^10\.78\.0\.(1[6-9]\d|200)$/;

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe.skipIf(!canRun)('machines on a real provisioning network (bridge, namespaces, dnsmasq)', () => {
  let net: TestNetwork;
  let serve: ServeProcess | null = null;
  let site: SiteDhcp | null = null;
  let vm: Vm | null = null;
  let bmc: RedfishPeer | null = null;
  let bmcVm: RedfishVm | null = null;
  /** Where the CLI reaches the controller (from namespace `ctl`). */
  let controllerUrl = `http://10.78.0.1:${PORT}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net-'));
  const vmDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-net-vm-'));
  // The controller is reached from inside its namespace only: the CLI runs there too.
  const cli = namespaceCli({ net: () => net, ns: 'ctl', dataDir, url: () => controllerUrl, env: { PLINTH_APPLIANCE_PASSWORD: 'calvin' } });

  /** (Re)starts `plinth serve` with these DHCP flags: same data, same network, another mode. */
  const serveWith = async (dhcpArgs: string[]) => {
    await serve?.stop();
    serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: `0.0.0.0:${PORT}`, PLINTH_LOG_LEVEL: 'info' }, [...dhcpArgs, '--dhcp-interface', 'eth0'], {
      prefix: net.prefix('ctl'),
      readyTimeoutMs: 120_000,
    });
    await serve.waitForLog((l) => l.msg === 'DHCP (dnsmasq) started', 120_000);
  };

  /** The site's own DHCP server, on or off (never two address-giving servers at once). */
  const siteDhcp = async (on: boolean) => {
    if (on && !site) site = await startSiteDhcp(net, { range: '10.78.0.160,10.78.0.200', router: '10.78.0.2' });
    if (!on && site) {
      await site.stop();
      site = null;
    }
  };

  /**
   * Powers a VM on and waits until it powers itself off (the installer does once the facts
   * are in); returns its machine, its newest boot attempt and when it was powered on.
   */
  const boot = async (spec: Omit<VmSpec, 'disks' | 'nics'> & { nic: VmNic }) => {
    const { nic, ...rest } = spec;
    vm = new Vm(
      { memoryMiB: 1536, ...rest, disks: [{ path: join(vmDir, `${spec.name}.qcow2`), sizeBytes: 3 * GiB }], nics: [nic] },
      { dir: vmDir, launcher: [...net.prefix('core'), ...TEST_QEMU_LAUNCHER] },
    );
    const poweredOn = Date.now();
    await vm.start();
    await vm.waitForExit(10 * 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; console tail:\n${vm!.serialOutput().slice(-3000)}\ncontroller: ${JSON.stringify(serve!.logs.slice(-10))}`);
    });
    vm = null;
    const listed = await waitFor('the machine', 30_000, async () => ((await cli('machine', 'list')) as { name: string; identity: { macs: string[] } }[]).find((m) => m.identity.macs.includes(nic.mac)));
    const machine = (await cli('machine', 'show', listed.name)) as {
      name: string;
      state: string;
      identity: { serial: string | null; systemUuid: string | null };
      facts: { nics: { mac: string; ipv4: string[] }[]; firmware: { bootMode: string } } | null;
    };
    const trace = await cli('machine', 'trace', machine.name);
    // One boot: the firmware's DHCP answer, its requests, the installer's own DHCP, the agent.
    expect(trace.attempts, JSON.stringify(trace)).toHaveLength(1);
    const stages = trace.attempts[0].stages as TraceEntry[];
    return { machine, stages, names: stages.map((s) => s.stage), poweredOn, addresses: machine.facts?.nics.find((n) => n.mac === nic.mac)?.ipv4 ?? [] };
  };

  beforeAll(async () => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    await linkSharedInstaller(dataDir);
    net = createTestNetwork({ ctl: '10.78.0.1/24', site: '10.78.0.2/24' });
    net.addTap('tap0');
  }, 600_000);

  afterAll(async () => {
    await vm?.stop();
    await serve?.stop();
    await bmc?.close();
    await bmcVm?.stop();
    await site?.stop();
    net?.remove();
    rmSync(vmDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('1. BIOS + iPXE ROM, Plinth the DHCP server (full): its fixed boot address, inspected, trace starting with the DHCP answer', async () => {
    await siteDhcp(false);
    await serveWith(['--dhcp', 'full', '--dhcp-range', '10.78.0.100,10.78.0.150']);
    const mac = '52:54:00:e2:10:01';
    // Known before it boots, with a fixed address outside the dynamic range.
    await cli('machine', 'create', 'net-full', '--mac', mac, '--serial', 'NET-FULL-1');
    expect((await cli('machine', 'update', 'net-full', '--boot-address', '10.78.0.42')).bootAddress).toBe('10.78.0.42');
    const hostsDir = join(dataDir, 'dhcp', 'hosts');
    await waitFor("the boot address in dnsmasq's hosts directory", 30_000, async () =>
      readdirSync(hostsDir).some((f) => readFileSync(join(hostsDir, f), 'utf8').includes(`${mac},10.78.0.42,net-full`)) ? true : undefined,
    );
    const { machine, stages, names, addresses } = await boot({ name: 'vm-full', firmware: 'bios', smbios: { serial: 'NET-FULL-1', uuid: '5c0e0001-0000-4000-8000-00000000e201' }, nic: { mac, tap: 'tap0' } });
    expect(machine.name).toBe('net-full');
    expect(machine.state).toBe('available');
    expect(machine.identity.serial).toBe('NET-FULL-1');
    // What the installer reported: the address DHCP gave it is the fixed one.
    expect(addresses).toEqual(['10.78.0.42']);
    expect(names[0]).toBe('dhcp');
    expect(names.filter((s) => s !== 'dhcp').slice(0, 2)).toEqual(['chain-script', 'machine-script']);
    expect(stages.find((s) => s.stage === 'dhcp')!.detail).toMatchObject({ event: 'ack', client: 'ipxe', mac, address: '10.78.0.42', bootFile: SCRIPT_URL });
    expect(stages.filter((s) => s.stage === 'dhcp').map((s) => s.detail?.client)).toEqual(['ipxe', 'other']);
    expect(names).toContain('kernel');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
  }, 900_000);

  it('2. BIOS + iPXE ROM, Plinth a proxy next to the site DHCP server: the site gives the address, Plinth what to boot', async () => {
    await siteDhcp(true);
    await serveWith(['--dhcp', 'proxy']);
    const mac = '52:54:00:e2:10:02';
    const { machine, stages, names, addresses } = await boot({ name: 'vm-proxy', firmware: 'bios', smbios: { serial: 'NET-PROXY-2', uuid: '5c0e0002-0000-4000-8000-00000000e202' }, nic: { mac, tap: 'tap0' } });
    expect(machine.state).toBe('available');
    expect(machine.identity.serial).toBe('NET-PROXY-2');
    expect(addresses[0]).toMatch(SITE_RANGE);
    expect(names[0], JSON.stringify(stages)).toBe('dhcp');
    const dhcp = stages.filter((s) => s.stage === 'dhcp').map((s) => s.detail ?? {});
    // Plinth's answers only: the proxy's offer, then its boot server's (port 4011) with the script.
    expect(dhcp.every((d) => d.client === 'ipxe'), JSON.stringify(dhcp)).toBe(true);
    expect(dhcp.find((d) => d.event === 'boot-server'), JSON.stringify(dhcp)).toMatchObject({ mac, bootFile: SCRIPT_URL });
    expect(names.filter((s) => s !== 'dhcp').slice(0, 2)).toEqual(['chain-script', 'machine-script']);
    expect(names).toContain('kernel');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
  }, 900_000);

  it('3. OVMF native UEFI HTTP boot (no iPXE ROM), Plinth a proxy: the firmware fetches ipxe.efi over HTTP, iPXE the script', async () => {
    await siteDhcp(true);
    await serveWith(['--dhcp', 'proxy']);
    const mac = '52:54:00:e2:10:03';
    const { machine, stages, names, addresses, poweredOn } = await boot({
      name: 'vm-httpboot',
      firmware: 'uefi',
      smbios: { serial: 'NET-HTTP-3', uuid: '5c0e0003-0000-4000-8000-00000000e203' },
      // romfile= (empty): the NIC has no iPXE ROM, OVMF boots from it with its own HTTP Boot.
      nic: { mac, tap: 'tap0', romfile: '' },
      // OVMF tries PXE and IPv6 first, tens of seconds each under TCG with no one answering.
      extraArgs: ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=n'],
    });
    expect(machine.state).toBe('available');
    expect(machine.identity.serial).toBe('NET-HTTP-3');
    expect(machine.facts?.firmware.bootMode).toBe('uefi');
    expect(addresses[0]).toMatch(SITE_RANGE);
    expect(names[0], JSON.stringify(stages)).toBe('dhcp');
    const dhcp = stages.filter((s) => s.stage === 'dhcp').map((s) => s.detail ?? {});
    // The firmware's own DHCP: Plinth's proxy answers the HTTP Boot client with the URL of
    // ipxe.efi; then iPXE's, answered with the script.
    expect(dhcp[0], JSON.stringify(dhcp)).toMatchObject({ mac, client: 'http-boot', bootFile: `http://10.78.0.1:${PORT}/boot/ipxe.efi` });
    expect(dhcp.find((d) => d.client === 'ipxe' && d.bootFile), JSON.stringify(dhcp)).toMatchObject({ bootFile: SCRIPT_URL });
    expect(names.filter((s) => s !== 'dhcp').slice(0, 2)).toEqual(['chain-script', 'machine-script']);
    expect(names).toContain('kernel');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
    const hello = stages.find((s) => s.stage === 'agent-hello')!;
    // The README's figure: power-on to the agent's hello, UEFI HTTP boot under TCG.
    console.log(`figure: UEFI HTTP boot, power-on -> agent hello: ${((new Date(hello.at).getTime() - poweredOn) / 1000).toFixed(0)} s`);
  }, 900_000);

  it('4. virtual media through the Redfish test service, no DHCP server on the network: the VM boots the machine\'s own ISO, its static address on it', async () => {
    await siteDhcp(false);
    await serve?.stop();
    serve = null;
    // The controller on this side of the bridge (10.78.0.3), with the Redfish service on loopback;
    // no dnsmasq anywhere: nothing on the bridge answers DHCP.
    net.joinHost('10.78.0.3/24');
    const port = await freePort();
    controllerUrl = `http://10.78.0.3:${port}`;
    serve = await startServe(
      {
        PLINTH_DATA_DIR: dataDir,
        PLINTH_LISTEN: `0.0.0.0:${port}`,
        PLINTH_PUBLIC_URL: controllerUrl,
        PLINTH_VMEDIA_NETWORK: '10.78.0.0/24',
        PLINTH_VMEDIA_DNS: '10.78.0.53',
        PLINTH_LOG_LEVEL: 'info',
        // GRUB reads the initramfs from the emulated CD slowly under TCG on a busy machine.
        PLINTH_DEADLINES_INSPECTING: '20m',
      },
      ['--dhcp', 'off'],
      { readyTimeoutMs: 120_000 },
    );
    const mac = '52:54:00:e2:10:04';
    const uuid = '5c0e0004-0000-4000-8000-00000000e204';
    let spec!: VmSpec;
    bmcVm = redfishVm({ spec: () => spec, runDir: vmDir, mediaDir: vmDir, launcher: [...net.prefix('core'), ...TEST_QEMU_LAUNCHER] });
    bmc = await startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'Off', ...bmcVm.hooks });
    bmcVm.bind(bmc);
    const system = bmc.system() as { UUID: string; SerialNumber: string; Manufacturer: string };
    Object.assign(system, { UUID: uuid.toUpperCase(), SerialNumber: 'NET-VMEDIA-4' });
    spec = {
      name: 'vm-vmedia',
      firmware: 'bios',
      memoryMiB: 1536,
      disks: [{ path: join(vmDir, 'vm-vmedia.qcow2'), sizeBytes: 3 * GiB }],
      // No option ROM: no network boot; the CD it is told to boot once is all it has.
      nics: [{ mac, tap: 'tap0', romfile: '' }],
      bootOrder: ['disk'],
      smbios: { uuid, serial: 'NET-VMEDIA-4', manufacturer: system.Manufacturer },
    };
    // Known before it boots, with its fixed address given at creation.
    const created = await cli('machine', 'create', 'net-vmedia', '--mac', mac, '--serial', 'NET-VMEDIA-4', '--uuid', uuid, '--boot-address', '10.78.0.44');
    expect(created.bootAddress).toBe('10.78.0.44');
    await cli('appliance', 'register', '--name', 'bmc-vmedia', '--type', 'redfish', '--address', bmc.url, '--user', 'root', '--boot-method', 'vmedia');
    const enlisted = await cli('appliance', 'enlist', 'bmc-vmedia', '--inspect');
    expect(JSON.stringify(enlisted)).toContain('net-vmedia');
    const consoleTail = () => {
      try {
        return readFileSync(join(vmDir, 'vm-vmedia.serial.log'), 'utf8').slice(-2000);
      } catch {
        return '-';
      }
    };
    const machine = await waitFor('the virtual-media machine inspected', 22 * 60_000, async () => {
      const m = await cli('machine', 'show', 'net-vmedia');
      return m.state === 'available' ? m : undefined;
    }, async () => `state ${(await cli('machine', 'show', 'net-vmedia')).state}, BMC ${JSON.stringify(bmcVm!.log)}, console: ${consoleTail()}`);
    expect(machine.identity.serial).toBe('NET-VMEDIA-4');
    expect(machine.facts.firmware.bootMode).toBe('bios');
    // What the installer reported: the static address from its ISO, on the card BOOTIF named.
    expect(machine.facts.nics.find((n: { mac: string }) => n.mac === mac).ipv4).toEqual(['10.78.0.44']);
    // The BMC fetched the machine's own ISO, attached it and booted once from the CD.
    const attachedAt = bmcVm.log.findIndex((l) => l.startsWith('attached '));
    expect(bmcVm.log.slice(0, attachedAt + 2).filter((l) => /^(fetched|attached|power On)/.test(l))).toEqual([
      `fetched ${controllerUrl}/boot/installer.iso?machine=${machine.id}`,
      expect.stringMatching(/^attached /),
      'power On Cd',
    ]);
    const trace = await cli('machine', 'trace', 'net-vmedia');
    const stages: TraceEntry[] = trace.attempts.flatMap((a: { stages: TraceEntry[] }) => a.stages);
    const names = stages.map((x) => x.stage);
    // No DHCP answered it and no iPXE script was fetched: it asked for its ticket by identity.
    expect(names).not.toContain('dhcp');
    expect(names).not.toContain('machine-script');
    expect(names).toContain('agent-ticket');
    expect(names.slice(-2)).toEqual(['agent-hello', 'facts']);
    // The run is over: the CD is ejected and the machine's own ISO removed.
    await waitFor('ejected', 120_000, async () => (bmc!.insertedImage() === null ? true : undefined));
    await waitFor("the machine's ISO removed", 60_000, async () => (readdirSync(join(dataDir, 'boot', 'installer-iso', 'machines')).length === 0 ? true : undefined));
    const hello = stages.find((x) => x.stage === 'agent-hello')!;
    // The README's figure: power-on to the agent's hello, virtual media under TCG with no DHCP.
    console.log(`figure: virtual media (BIOS, no DHCP), power-on -> agent hello: ${((Date.parse(hello.at) - bmcVm.poweredOnAt[0]!) / 1000).toFixed(0)} s`);
  }, 30 * 60_000);
});
