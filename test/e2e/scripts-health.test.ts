import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, waitFor } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * Operators' scripts and health checks on real VMs (QEMU, TCG) booting the real installer,
 * built with `--package sysbench --package fio` (its own cached build, shared by this file's
 * boots): a discovery script runs in both VMs' first inspection and its output is stored; a
 * health check measures both (two VMs of one profile) with sysbench and fio, the figures land
 * in their facts and the profile's comparison answers; a commissioning script that fails marks
 * its machine with the script's name and output. Two VMs, at most two at once.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const GiB = 2 ** 30;
const vmDir = mkdtempSync(join(tmpdir(), 'plinth-e2e-health-'));

holdVmSlots(2); // two VMs at once: both slots of the machine's two (docs/testing.md)

describe('scripts and health checks on real VMs', () => {
  let t: E2E;
  const specs: VmSpec[] = [];
  const vms: Vm[] = [];
  const macs = ['52:54:00:e2:15:01', '52:54:00:e2:15:02'];
  const names: string[] = [];

  beforeAll(async () => {
    t = await e2eController({}, { installerPackages: ['sysbench', 'fio'] });
    for (const [i, mac] of macs.entries()) {
      specs.push({
        name: `health-${i + 1}`,
        firmware: 'bios',
        memoryMiB: 1024,
        cpus: 1,
        smbios: { serial: `PLN-HEALTH-${i + 1}`, manufacturer: 'Plinth Labs', product: 'Health Node' },
        disks: [{ path: join(vmDir, `h${i}.qcow2`), sizeBytes: 2 * GiB, serial: `DISK-H${i}` }],
        nics: [{ mac, bootUrl: t.bootUrl }],
      });
    }
    // Both VMs are the same hardware: one profile, so that their health figures are compared.
    expect((await t.api('POST', '/api/v1/profiles/apply', { profiles: [{ name: 'health-node', spec: [] }] })).statusCode).toBe(200);
    // A cold cache builds this installer (debootstrap with sysbench and fio: minutes on a busy machine).
  }, 30 * 60_000);
  afterAll(async () => {
    for (const vm of vms) await vm.stop();
    await t?.close();
  });

  const machine = async (mac: string) => (await t.api('GET', `/api/v1/machines?q=${mac}&include=facts`)).json().items[0];
  /** Powers a VM on; it network-boots into whatever run its machine has, and powers off at the end. */
  const boot = async (i: number) => {
    vms[i] ??= new Vm(specs[i]!, { dir: vmDir, launcher: TEST_QEMU_LAUNCHER });
    await vms[i]!.start();
  };
  const ranAndOff = async (i: number) => {
    await vms[i]!.waitForExit(12 * 60_000).catch(async (e) => {
      throw new Error(`${e.message}; machine: ${JSON.stringify((await machine(macs[i]!))?.state)}; console tail:\n${vms[i]!.serialOutput().slice(-3000)}`);
    });
    return machine(macs[i]!);
  };
  const scripts = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}/scripts`)).json().items as any[];

  it('runs a discovery script in the first inspection of both VMs and stores its output', async () => {
    const discover = '#!/bin/sh\necho "discovered $PLINTH_VAR_MACHINE_SERIAL: $(nproc) cpu(s)"\nlsblk -d -n -o NAME,SIZE > "$PLINTH_OUTPUT_DIR/disks.txt"\n';
    expect((await t.api('PUT', '/api/v1/scripts/discover', { content: discover, inspect: true, timeoutSeconds: 300 })).statusCode).toBe(201);
    await Promise.all([boot(0), boot(1)]);
    const found = await Promise.all([ranAndOff(0), ranAndOff(1)]);
    for (const [i, m] of found.entries()) {
      expect(m.state, m.name).toBe('available');
      expect(m.match?.profile).toBe('health-node');
      names[i] = m.name;
      const [r] = await scripts(m.name);
      expect(r).toMatchObject({ name: 'discover', status: 'passed', exitCode: 0 });
      expect(r.output).toBe(`discovered PLN-HEALTH-${i + 1}: 1 cpu(s)\n`);
      expect(r.files.map((f: { name: string }) => f.name)).toEqual(['disks.txt']);
      const disks = await fetch(`${t.url}/api/v1/machines/${m.name}/scripts/${r.id}/files/disks.txt`, { headers: { authorization: `Bearer ${t.adminToken}` } });
      expect(await disks.text()).toMatch(/^vda +2G$/m);
    }
    // Discovery is done; the library script would run again in every later inspection.
    expect((await t.api('DELETE', '/api/v1/scripts/discover')).statusCode).toBe(204);
  }, 15 * 60_000);

  it('measures both VMs with sysbench and fio (reads only), keeps the figures as facts, and compares them', async () => {
    for (const name of names) {
      const r = await t.api('POST', `/api/v1/machines/${name}/actions/inspect`, { health: { cpuSeconds: 2, memorySeconds: 2, diskSeconds: 2 } });
      expect(r.statusCode, r.body).toBe(200);
    }
    await Promise.all([boot(0), boot(1)]);
    const measured = await Promise.all([ranAndOff(0), ranAndOff(1)]);
    for (const m of measured) {
      expect(m.state, `${m.name}: ${JSON.stringify(m.lastError)}`).toBe('available');
      const hw: string[][] = m.facts.hw;
      const figure = (c: string, id: string, k: string) => Number(hw.find((l) => l[0] === c && l[1] === id && l[2] === k)?.[3]);
      // One logical CPU: per core and all cores are both there.
      expect(figure('cpu', 'logical_0', 'loops_per_sec')).toBeGreaterThan(0);
      expect(figure('cpu', 'logical', 'loops_per_sec')).toBeGreaterThan(0);
      expect(figure('cpu', 'logical_0', 'bandwidth_1M')).toBeGreaterThan(0);
      expect(figure('cpu', 'logical', 'threaded_bandwidth_1M')).toBeGreaterThan(0);
      expect(figure('cpu', 'logical_0', 'bogomips')).toBeGreaterThan(0);
      for (const k of ['standalone_read_1M_KBps', 'standalone_read_1M_IOps', 'standalone_randread_4k_KBps', 'standalone_randread_4k_IOps']) expect(figure('disk', 'vda', k), k).toBeGreaterThan(0);
      const [run] = (await t.api('GET', `/api/v1/machines/${m.name}/health`)).json().items;
      expect(run).toMatchObject({ machine: m.name, status: 'passed', problems: [] });
      expect(Object.keys(run.figures)).toHaveLength(run.tuples.length);
    }
    const c = (await t.api('GET', '/api/v1/profiles/health-node/health')).json();
    expect(c.runs.map((r: { machine: string }) => r.machine).sort()).toEqual([...names].sort());
    expect(c.missing).toEqual([]);
    expect(c.outliers).toEqual({});
    const read = c.figures.find((f: { figure: string }) => f.figure === 'disk/vda/standalone_read_1M_KBps');
    expect(read.machines).toHaveLength(2);
    expect(read.median).toBeGreaterThan(0);
    for (const f of c.figures) console.log(`health ${f.figure}: ${f.machines.map((m: { machine: string; value: number }) => `${m.machine}=${m.value}`).join(' ')}`);
  }, 15 * 60_000);

  it('marks the machine whose commissioning script fails with the script’s name and output', async () => {
    const scriptsGiven = [
      { name: 'cpu-ok', content: '#!/bin/sh\ngrep -c ^processor /proc/cpuinfo\n', timeoutSeconds: 120 },
      { name: 'memtest', content: '#!/bin/sh\necho "testing $(grep MemTotal /proc/meminfo)"\necho "bad DIMM A1" >&2\nexit 3\n', timeoutSeconds: 120 },
    ];
    const r = await t.api('POST', `/api/v1/machines/${names[0]}/actions/inspect`, { scripts: scriptsGiven });
    expect(r.statusCode, r.body).toBe(200);
    await boot(0);
    // A failed run leaves the installer up (its /init restarts the agent, which the controller
    // now refuses): wait for the machine's state, then pull the plug.
    const m = await waitFor('the commissioning run to fail', 12 * 60_000, async () => {
      const x = await machine(macs[0]!);
      return x.state === 'inspecting' || x.state === 'inspect-wait' ? undefined : x;
    }, async () => vms[0]!.serialOutput().slice(-3000));
    await vms[0]!.stop();
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'script', stage: 'script-memtest', message: 'script memtest exited 3: bad DIMM A1' });
    const byName = Object.fromEntries((await scripts(m.name)).map((s) => [s.name, s]));
    expect(byName['cpu-ok']).toMatchObject({ status: 'passed', output: '1\n' });
    expect(byName['memtest']).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(byName['memtest'].output).toMatch(/^testing MemTotal: +\d+ kB\nbad DIMM A1\n$/);
  }, 15 * 60_000);
});
