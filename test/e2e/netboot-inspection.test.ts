import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, waitFor } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * Machines nobody told Plinth about network-boot through their own iPXE firmware (QEMU, TCG),
 * get enrolled, boot the real installer, and the real agent inspects them: each must end
 * `available` with the facts the VM was given, and a boot trace with every stage.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const GiB = 2 ** 30;
const vmDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-vms-'));

holdVmSlots(2); // two VMs at once: both slots of the machine's two (docs/testing.md)

describe('network boot and inspection of real VMs', () => {
  let t: E2E;
  const vms: Vm[] = [];
  const specs: Record<string, VmSpec> = {};
  beforeAll(async () => {
    t = await e2eController();
    specs.a = {
      name: 'vm-a',
      firmware: 'bios',
      memoryMiB: 1536,
      smbios: { uuid: 'a0e2e000-0000-4000-8000-00000000000a', serial: 'PLN-E2E-A', manufacturer: 'Plinth Labs', product: 'Rack Server A', assetTag: 'ASSET-A-17' },
      disks: [
        { path: join(vmDir, 'a0.qcow2'), sizeBytes: 4 * GiB, serial: 'DISK-A0' },
        { path: join(vmDir, 'a1.qcow2'), sizeBytes: 6 * GiB, serial: 'DISK-A1' },
      ],
      nics: [{ mac: '52:54:00:e2:00:0a', bootUrl: t.bootUrl }],
    };
    specs.b = {
      name: 'vm-b',
      firmware: 'uefi',
      // UEFI with 1 GiB ran out of room unpacking the installer's last layer (its agent) once.
      memoryMiB: 1536,
      smbios: { uuid: 'b0e2e000-0000-4000-8000-00000000000b', serial: 'PLN-E2E-B', manufacturer: 'Acme Compute', product: 'Blade B', assetTag: 'ASSET-B-42' },
      disks: [{ path: join(vmDir, 'b0.qcow2'), sizeBytes: 5 * GiB, serial: 'DISK-B0' }],
      nics: [{ mac: '52:54:00:e2:00:0b', bootUrl: t.bootUrl }, { mac: '52:54:00:e2:00:bb' }],
    };
    specs.c = {
      name: 'vm-c',
      firmware: 'bios',
      memoryMiB: 1024,
      smbios: { uuid: '00000000-0000-0000-0000-000000000000', serial: 'To Be Filled By O.E.M.', manufacturer: 'To Be Filled By O.E.M.', product: 'Default string' },
      disks: [{ path: join(vmDir, 'c0.qcow2'), sizeBytes: 3 * GiB }],
      nics: [{ mac: '52:54:00:e2:00:0c', bootUrl: t.bootUrl }],
    };
  });
  afterAll(async () => {
    for (const vm of vms) await vm.stop();
    await t?.close();
  });

  const machineByMac = async (mac: string) => (await t.api('GET', `/api/v1/machines?q=${mac}&include=facts`)).json().items as any[];
  const boot = async (spec: VmSpec) => {
    const vm = new Vm(spec, { dir: vmDir, launcher: TEST_QEMU_LAUNCHER });
    vms.push(vm);
    await vm.start();
    return vm;
  };
  /** Waits for the agent to power the VM off (the last thing an inspection does). */
  const inspectedAndOff = async (vm: Vm, mac: string) => {
    await vm.waitForExit(8 * 60_000).catch(async (e) => {
      throw new Error(`${e.message}; machine: ${JSON.stringify((await machineByMac(mac))[0]?.state)}; console tail:\n${vm.serialOutput().slice(-3000)}`);
    });
    return (await machineByMac(mac))[0];
  };

  it('enrols and inspects two unknown machines at once, BIOS and UEFI, with the facts they were given', async () => {
    const [a, b] = await Promise.all([boot(specs.a!), boot(specs.b!)]);
    const [ma, mb] = await Promise.all([inspectedAndOff(a, '52:54:00:e2:00:0a'), inspectedAndOff(b, '52:54:00:e2:00:0b')]);
    for (const [m, spec] of [[ma, specs.a!], [mb, specs.b!]] as const) {
      expect(m.state, m.name).toBe('available');
      const s = spec.smbios!;
      expect(m.identity).toMatchObject({ systemUuid: s.uuid, serial: s.serial, manufacturer: s.manufacturer, productName: s.product, assetTag: s.assetTag });
      expect(m.facts.system).toEqual({ uuid: s.uuid, serial: s.serial, assetTag: s.assetTag, manufacturer: s.manufacturer, productName: s.product });
      // Installed memory from SMBIOS, not what the kernel sees after its own reservations.
      expect(m.facts.memory).toEqual({ totalBytes: spec.memoryMiB! * 2 ** 20, source: 'smbios' });
      expect(m.facts.disks.map((d: any) => [d.sizeBytes, d.serial])).toEqual(spec.disks!.map((d) => [d.sizeBytes, d.serial ?? null]));
      expect(m.facts.nics.map((n: any) => n.mac).sort()).toEqual(spec.nics!.map((n) => n.mac).sort());
      expect(m.facts.firmware.bootMode).toBe(spec.firmware);
      expect(m.facts.hw).toContainEqual(['system', 'product', 'serial', s.serial]);
      expect(m.facts.hw).toContainEqual(['memory', 'total', 'size', String(spec.memoryMiB! * 2 ** 20)]);
      const trace = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json();
      expect(trace.attempts).toHaveLength(1);
      const stages = trace.attempts[0].stages.map((x: any) => x.stage);
      expect(stages.slice(0, 2)).toEqual(['chain-script', 'machine-script']);
      expect(stages).toContain('kernel');
      expect(stages).toContain('initrd');
      expect(stages.slice(-2)).toEqual(['agent-hello', 'facts']);
      // ${buildarch} is iPXE's own: QEMU's legacy option ROM is a 32-bit iPXE, its EFI driver a 64-bit one.
      expect(trace.attempts[0]).toMatchObject({ decision: 'installer', platform: spec.firmware === 'uefi' ? 'efi' : 'pcbios', arch: spec.firmware === 'uefi' ? 'x86_64' : 'i386' });
      const run = (await t.api('GET', `/api/v1/machines/${m.id}/runs`)).json().items[0];
      expect(run).toMatchObject({ kind: 'inspect', status: 'succeeded' });
      const log = (await t.api('GET', `/api/v1/runs/${run.id}/log`)).json().items.map((l: any) => l.line);
      expect(log[0]).toMatch(/^hello: machine /);
    }
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(2);
  }, 12 * 60_000);

  it('identifies a machine whose SMBIOS is all placeholders by its MAC, and knows it on its second boot', async () => {
    const c = await boot(specs.c!);
    const m = await inspectedAndOff(c, '52:54:00:e2:00:0c');
    expect(m.state).toBe('available');
    expect(m.identity).toMatchObject({ systemUuid: null, serial: null, manufacturer: null, macs: ['52:54:00:e2:00:0c'] });
    // The facts keep what the machine said; only identity ignores the placeholders.
    expect(m.facts.system.serial).toBe('To Be Filled By O.E.M.');
    const again = await boot({ ...specs.c!, name: 'vm-c-again' });
    await waitFor('second boot traced', 3 * 60_000, async () => {
      const tr = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json();
      return tr.attempts.length === 2 && tr.attempts[1].stages.some((s: any) => s.stage === 'local-boot') ? tr : undefined;
    });
    await again.stop();
    expect(await machineByMac('52:54:00:e2:00:0c')).toHaveLength(1);
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(3);
  }, 10 * 60_000);

  it('boots an inspected machine again as the same machine, from its local disk', async () => {
    const [before] = await machineByMac('52:54:00:e2:00:0a');
    const a = await boot({ ...specs.a!, name: 'vm-a-again' });
    const trace = await waitFor('local boot traced', 3 * 60_000, async () => {
      const tr = (await t.api('GET', `/api/v1/machines/${before.id}/trace`)).json();
      return tr.attempts.length === 2 ? tr : undefined;
    });
    await a.stop();
    expect(trace.attempts[1]).toMatchObject({ decision: 'local' });
    expect(trace.attempts[1].stages.map((s: any) => s.stage)).toEqual(['chain-script', 'machine-script', 'local-boot']);
    const [after] = await machineByMac('52:54:00:e2:00:0a');
    expect(after.id).toBe(before.id);
    expect(after.state).toBe('available');
    expect((await t.api('GET', '/api/v1/machines')).json().items).toHaveLength(3);
  }, 6 * 60_000);
});
