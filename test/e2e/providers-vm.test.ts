import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuArgs, Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, waitFor } from '../support/e2e.js';
import { startIpmiSim, type IpmiSimPeer } from '../support/peers/ipmi-sim.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { redfishVm as vmBehindRedfish, type RedfishVm } from '../support/peers/redfish-vm.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * Providers driving real VMs through the lifecycle, with no human at the (virtual) rack: an
 * IPMI BMC (OpenIPMI's ipmi_sim) whose chassis starts and stops a QEMU VM, and the Redfish
 * test service applying Reset and boot overrides to another one. Enlisting with inspection
 * powers each machine on; it network-boots into the installer, is inspected, and powers off.
 * A third VM has no DHCP boot options at all: its BMC (the Redfish test service) boots it from
 * the installer ISO as virtual media, a real CD drive whose medium QMP changes.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const dir = mkdtempSync(join(tmpdir(), 'plinth-e2e-providers-'));
const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** A chassis_control script that is the VM's power button: QEMU starts on power-on, with the boot order the BMC holds. */
function vmChassisScript(spec: VmSpec): string {
  const args = (order: ('network' | 'disk')[]) => qemuArgs({ ...spec, bootOrder: order }, { dir: join(dir, 'run') }).map(sh).join(' ');
  return `#!/bin/sh
dir="$(dirname "$0")/chassis"
echo "$*" >> "$dir/calls.log"
running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }
start() {
  case "$(cat "$dir/boot" 2>/dev/null)" in
    pxe) qemu-system-x86_64 ${args(['network', 'disk'])} -pidfile "$dir/pid" -daemonize ;;
    *) qemu-system-x86_64 ${args(['disk', 'network'])} -pidfile "$dir/pid" -daemonize ;;
  esac
}
stop() { running && kill "$(cat "$dir/pid")"; rm -f "$dir/pid"; }
op=$1; shift
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      power) if running; then echo "power:1"; else echo "power:0"; fi ;;
      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;
      *) echo "$p:0" ;;
    esac
  done
  exit 0
fi
while [ $# -gt 1 ]; do
  case $1 in
    power) if [ "$2" = 1 ]; then running || start; else stop; fi ;;
    reset) stop; start ;;
    shutdown) stop ;;
    boot) echo "$2" > "$dir/boot" ;;
  esac
  shift 2
done
`;
}

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe('providers driving real VMs', () => {
  let t: E2E;
  let bmc: IpmiSimPeer;
  let redfish: RedfishPeer;
  let redfishVm: Vm | null = null;
  let vmediaPeer: RedfishPeer | undefined;
  let vmedia: RedfishVm | undefined;
  beforeAll(async () => {
    t = await e2eController({ providers: { timeout: '30s' } });
    t.controller.power.start();
  });
  afterAll(async () => {
    // Controller, then the peers, then the VM: nothing left can power a VM on again.
    await t?.controller.close();
    await redfish?.close();
    await vmediaPeer?.close();
    await vmedia?.stop();
    await bmc?.close();
    await redfishVm?.stop();
    await t?.close();
  });

  it('IPMI: enlists the BMC, powers the VM on into inspection, and it ends inspected and off', async () => {
    const spec: VmSpec = {
      name: 'ipmi-vm',
      memoryMiB: 1024,
      smbios: { uuid: '1b1b1b1b-0000-4000-8000-000000000001', serial: 'IPMI-VM-1', manufacturer: 'Plinth Labs' },
      disks: [{ path: join(dir, 'ipmi.qcow2'), sizeBytes: 2 * 2 ** 30 }],
      nics: [{ mac: '52:54:00:1b:00:01', bootUrl: t.bootUrl }],
    };
    await new Vm(spec, { dir: join(dir, 'run') }).prepare();
    // As on real servers, the BMC's system GUID is the host's SMBIOS UUID: that is how the booting VM is known to be the enlisted machine.
    bmc = await startIpmiSim({ chassisScript: vmChassisScript(spec), guid: spec.smbios!.uuid!.replaceAll('-', '') });
    const reg = await t.api('POST', '/api/v1/appliances', { name: 'bmc-ipmi', type: 'ipmi', address: bmc.address, username: bmc.username, password: bmc.password, options: { cipherSuite: 3 } });
    expect(reg.statusCode, reg.body).toBe(201);
    const e = await t.api('POST', '/api/v1/appliances/bmc-ipmi/enlist', { inspect: true });
    expect(e.statusCode, e.body).toBe(200);
    const [entry] = e.json().items;
    expect(entry).toMatchObject({ outcome: 'created', inspecting: true, system: { ref: 'bmc', systemUuid: spec.smbios!.uuid } });
    const name = entry.machine.name;

    const m = await waitFor('IPMI machine inspected', 8 * 60_000, async () => {
      const cur = (await t.api('GET', `/api/v1/machines/${name}`)).json();
      return cur.state === 'available' ? cur : undefined;
    }, async () => `machine ${JSON.stringify((await t.api('GET', `/api/v1/machines/${name}`)).json().state)}, BMC calls ${JSON.stringify(bmc.calls())}, console: ${existsSync(join(dir, 'run', 'ipmi-vm.serial.log')) ? readFileSync(join(dir, 'run', 'ipmi-vm.serial.log'), 'utf8').slice(-1500) : '-'}`);
    // The same machine the BMC stood for, now with the VM's own facts.
    expect(m.facts.system.serial).toBe('IPMI-VM-1');
    expect(m.identity.macs).toContain('52:54:00:1b:00:01');
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(1);
    const calls = bmc.calls().filter((c) => c.startsWith('set'));
    expect(calls).toContain('set boot pxe');
    expect(calls.indexOf('set boot pxe')).toBeLessThan(calls.findIndex((c) => c === 'set power 1' || c === 'set reset 1'));
    // The agent powered it off; the BMC says so, read through IPMI.
    const off = await waitFor<any>('VM off', 2 * 60_000, async () => {
      const s = await t.api('GET', `/api/v1/machines/${name}/power`);
      return s.json().machine?.power.state === 'off' ? s.json() : undefined;
    });
    expect(off.machine.power).toMatchObject({ state: 'off', source: 'ipmi', expected: 'off', drift: false });
    const again = await t.api('POST', `/api/v1/machines/${name}/power`, { action: 'off' });
    expect(again.statusCode, again.body).toBe(200);
  }, 12 * 60_000);

  it('Redfish: Reset and the boot override really boot a VM into inspection', async () => {
    const seen: string[] = [];
    let spec!: VmSpec;
    redfish = await startRedfishPeer({
      username: 'root',
      password: 'calvin',
      powerState: 'Off',
      onPowerChange: (_id, state, detail) => {
        seen.push(`${state}:${detail.bootTarget}`);
        void (async () => {
          await redfishVm?.stop();
          redfishVm = null;
          if (state === 'On') {
            const vm = new Vm({ ...spec, bootOrder: detail.bootTarget === 'Pxe' ? ['network', 'disk'] : ['disk', 'network'] }, { dir: join(dir, 'run'), launcher: TEST_QEMU_LAUNCHER });
            redfishVm = vm;
            await vm.start();
            // When the guest powers itself off, so does the system the service describes.
            void vm.waitForExit(30 * 60_000).then(() => {
              if (redfishVm === vm) (redfish.system() as { PowerState: string }).PowerState = 'Off';
            }, () => undefined);
          }
        })();
      },
    });
    // The VM is the server the mockup describes: same UUID, serial and first MAC, as a real BMC reports its host.
    const system = redfish.system() as { UUID: string; SerialNumber: string; Manufacturer: string };
    spec = {
      name: 'redfish-vm',
      memoryMiB: 1024,
      disks: [{ path: join(dir, 'redfish.qcow2'), sizeBytes: 2 * 2 ** 30 }],
      nics: [{ mac: '12:44:6a:3b:04:11', bootUrl: t.bootUrl }],
      smbios: { uuid: system.UUID.toLowerCase(), serial: system.SerialNumber, manufacturer: system.Manufacturer },
    };
    const before = (await t.api('GET', '/api/v1/machines')).json().items.length;
    await t.api('POST', '/api/v1/appliances', { name: 'bmc-redfish', type: 'redfish', address: redfish.url, username: 'root', password: 'calvin' });
    const e = (await t.api('POST', '/api/v1/appliances/bmc-redfish/enlist', { inspect: true })).json();
    const name = e.items[0].machine.name;
    const m = await waitFor('Redfish machine inspected', 8 * 60_000, async () => {
      const cur = (await t.api('GET', `/api/v1/machines/${name}`)).json();
      return cur.state === 'available' ? cur : undefined;
    }, async () => `state ${(await t.api('GET', `/api/v1/machines/${name}`)).json().state}, power changes ${JSON.stringify(seen)}`);
    expect(seen[0]).toBe('On:Pxe');
    expect(m.facts.system.serial).toBe(system.SerialNumber);
    expect(m.identityConflicts).toEqual([]);
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(before + 1);
    // The agent powers it off after its facts: one VM at a time (this file holds one slot).
    await waitFor('Redfish VM off', 2 * 60_000, async () => ((redfish.system() as { PowerState: string }).PowerState === 'Off' ? true : undefined));
  }, 12 * 60_000);

  it('Redfish virtual media: a VM that no DHCP points anywhere boots the installer ISO its BMC attached, and ends available', async () => {
    let spec!: VmSpec;
    const vm = vmBehindRedfish({
      spec: () => spec,
      runDir: join(dir, 'run'),
      mediaDir: dir,
      // The BMC fetches the ISO from the controller's loopback listener, where the guests see 10.0.2.2.
      reach: (url) => url.replace('//10.0.2.2:', '//127.0.0.1:'),
    });
    vmedia = vm;
    vmediaPeer = await startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'Off', ...vm.hooks });
    vm.bind(vmediaPeer);
    const system = vmediaPeer.system() as { UUID: string; SerialNumber: string; Manufacturer: string };
    const uuid = '2c2c2c2c-0000-4000-8000-000000000004';
    // Its own identity (the other Redfish VM has the mockup's), as a BMC reports its host.
    Object.assign(system, { UUID: uuid.toUpperCase(), SerialNumber: 'VMEDIA-VM-1' });
    spec = {
      name: 'vmedia-vm',
      memoryMiB: 1024,
      disks: [{ path: join(dir, 'vmedia.qcow2'), sizeBytes: 2 * 2 ** 30 }],
      // QEMU's user network without a boot file: DHCP gives an address and nothing to boot.
      nics: [{ mac: '52:54:00:2c:00:04' }],
      bootOrder: ['disk'],
      smbios: { uuid, serial: 'VMEDIA-VM-1', manufacturer: system.Manufacturer },
    };
    const reg = await t.api('POST', '/api/v1/appliances', { name: 'bmc-vmedia', type: 'redfish', address: vmediaPeer.url, username: 'root', password: 'calvin', bootMethod: 'vmedia' });
    expect(reg.statusCode, reg.body).toBe(201);
    const e = (await t.api('POST', '/api/v1/appliances/bmc-vmedia/enlist', { inspect: true })).json();
    const name = e.items[0].machine.name;
    const console = () => (existsSync(join(dir, 'run', 'vmedia-vm.serial.log')) ? readFileSync(join(dir, 'run', 'vmedia-vm.serial.log'), 'utf8').slice(-1500) : '-');
    const m = await waitFor('virtual media machine inspected', 8 * 60_000, async () => {
      const cur = (await t.api('GET', `/api/v1/machines/${name}`)).json();
      return cur.state === 'available' ? cur : undefined;
    }, async () => `state ${(await t.api('GET', `/api/v1/machines/${name}`)).json().state}, BMC ${JSON.stringify(vm.log)}, console: ${console()}`);
    expect(m.facts.system.serial).toBe('VMEDIA-VM-1');
    expect(m.identity.macs).toContain('52:54:00:2c:00:04');
    // The BMC fetched the controller's ISO, put it in the drive and booted from the CD once.
    const attachedAt = vm.log.findIndex((l) => l.startsWith('attached '));
    expect(vm.log.slice(0, attachedAt + 2).filter((l) => l.startsWith('fetched') || l.startsWith('attached') || l.startsWith('power On'))).toEqual([
      `fetched ${t.url.replace('127.0.0.1', '10.0.2.2')}/boot/installer.iso`,
      expect.stringMatching(/^attached /),
      'power On Cd',
    ]);
    const trace = (await t.api('GET', `/api/v1/machines/${name}/trace`)).json();
    const stages: { stage: string; at: string }[] = trace.attempts.flatMap((a: { stages: { stage: string; at: string }[] }) => a.stages);
    // Asked for its ticket by identity; no iPXE script was ever fetched.
    expect(stages.map((x) => x.stage)).toContain('agent-ticket');
    expect(stages.map((x) => x.stage)).not.toContain('machine-script');
    // The run is over: the CD is ejected, and the history says both.
    await waitFor('ejected', 60_000, async () => (vmediaPeer!.insertedImage() === null ? true : undefined));
    const events = await waitFor('media events', 60_000, async () => {
      const actions = (await t.api('GET', `/api/v1/machines/${name}/events`)).json().items.map((x: { action: string }) => x.action);
      return actions.includes('virtual-media-ejected') ? actions : undefined;
    });
    expect(events).toContain('virtual-media-inserted');
    const hello = stages.find((x) => x.stage === 'agent-hello')?.at;
    expect(hello).toBeDefined();
    const seconds = (Date.parse(hello!) - vm.poweredOnAt[0]!) / 1000;
    process.stdout.write(`power-on → agent hello (virtual media, QEMU TCG, BIOS): ${seconds.toFixed(1)} s\n`);
  }, 12 * 60_000);
});
