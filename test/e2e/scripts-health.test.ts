import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { RAID1_EXAMPLE } from '../../src/protocol/disk-layout.js';
import { Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, sharedTree, waitFor } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';
import { freePort, generateSshKey, ssh, sshWhenReady, type SshKey, type SshTarget } from '../support/image-ssh.js';
import { writeFiles } from '../support/trees.js';

/**
 * Operators' scripts and health checks on real VMs (QEMU, TCG) booting the real installer,
 * built with `--package sysbench --package fio` (its own cached build, shared by this file's
 * boots): both VMs, known by MAC, are sent to a health check before their first boot, which
 * runs the library's discovery script (its output stored) and then measures both (two VMs of
 * one profile) with sysbench and fio: the figures land in their facts and the profile's
 * comparison answers. Then the same two VMs, each with two disks,
 * get eDeploy's tree of role `mysql` at `D7-F.1.0.0` (the image's system built as a tree,
 * served by Plinth's rsync daemon) on RAID1 over both disks — one with ONSUCCESS=kexec and the
 * layout computed by a configure script, the other with ONSUCCESS=reboot and the layout in the
 * request — and boot it; one host then moves to `D7-F.1.0.1` with `edeploy upgrade` and checks
 * itself with `edeploy verify`; the other, taken back without a wipe, runs a commissioning
 * script that fails, which marks it with the script's name and output. Two VMs, at most two at once.
 */
const execFileAsync = promisify(execFile);
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
  const sshPorts: number[] = [];
  let key: SshKey;
  let treeBuilt: Promise<string>;

  beforeAll(async () => {
    t = await e2eController({ trees: { rsyncListen: `127.0.0.1:${await freePort()}` } }, { installerPackages: ['sysbench', 'fio'] });
    key = await generateSshKey(vmDir);
    // The tree is built (once, from the image builder's cached base) while the first VMs run.
    treeBuilt = sharedTree();
    treeBuilt.catch(() => undefined);
    for (const [i, mac] of macs.entries()) {
      sshPorts[i] = await freePort();
      specs.push({
        name: `health-${i + 1}`,
        firmware: 'bios',
        memoryMiB: 1024,
        cpus: 1,
        smbios: { serial: `PLN-HEALTH-${i + 1}`, manufacturer: 'Plinth Labs', product: 'Health Node' },
        disks: [
          { path: join(vmDir, `h${i}.qcow2`), sizeBytes: 2 * GiB, serial: `DISK-H${i}` },
          { path: join(vmDir, `h${i}b.qcow2`), sizeBytes: 2 * GiB, serial: `DISK-H${i}B` },
        ],
        nics: [{ mac, bootUrl: t.bootUrl, hostForwards: [{ hostPort: sshPorts[i]!, guestPort: 22 }] }],
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
  const host = (i: number): SshTarget => ({ key, port: sshPorts[i]!, user: 'plinth' });
  const ranAndOff = async (i: number) => {
    await vms[i]!.waitForExit(12 * 60_000).catch(async (e) => {
      throw new Error(`${e.message}; machine: ${JSON.stringify((await machine(macs[i]!))?.state)}; console tail:\n${vms[i]!.serialOutput().slice(-3000)}`);
    });
    return machine(macs[i]!);
  };
  const scripts = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}/scripts`)).json().items as any[];

  it('runs a discovery script and a health check (sysbench, fio reads) in the first inspection of both VMs: output kept, figures as facts, compared', async () => {
    const discover = '#!/bin/sh\necho "discovered $PLINTH_VAR_MACHINE_SERIAL: $(nproc) cpu(s)"\nlsblk -d -n -o NAME,SIZE > "$PLINTH_OUTPUT_DIR/disks.txt"\n';
    expect((await t.api('PUT', '/api/v1/scripts/discover', { content: discover, inspect: true, timeoutSeconds: 300 })).statusCode).toBe(201);
    // Known by MAC before they boot, and sent to a health check at once: one boot each does both
    // (a health check runs the library's inspection scripts, then its own).
    for (const [i, mac] of macs.entries()) {
      names[i] = `health-${i + 1}`;
      const created = await t.api('POST', '/api/v1/machines', { name: names[i], identity: { macs: [mac], serial: `PLN-HEALTH-${i + 1}` } });
      expect(created.statusCode, created.body).toBe(201);
      const r = await t.api('POST', `/api/v1/machines/${names[i]}/actions/inspect`, { health: { cpuSeconds: 2, memorySeconds: 2, diskSeconds: 2 } });
      expect(r.statusCode, r.body).toBe(200);
    }
    await Promise.all([boot(0), boot(1)]);
    const measured = await Promise.all([ranAndOff(0), ranAndOff(1)]);
    for (const [i, m] of measured.entries()) {
      expect(m.state, `${m.name}: ${JSON.stringify(m.lastError)}`).toBe('available');
      expect(m.match?.profile).toBe('health-node');
      const r = (await scripts(m.name)).find((x) => x.name === 'discover');
      expect(r).toMatchObject({ name: 'discover', status: 'passed', exitCode: 0 });
      expect(r.output).toBe(`discovered PLN-HEALTH-${i + 1}: 1 cpu(s)\n`);
      expect(r.files.map((f: { name: string }) => f.name)).toEqual(['disks.txt']);
      const disks = await fetch(`${t.url}/api/v1/machines/${m.name}/scripts/${r.id}/files/disks.txt`, { headers: { authorization: `Bearer ${t.adminToken}` } });
      expect(await disks.text()).toMatch(/^vda +2G$/m);
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
    // Discovery is done; the library script would run again in every later inspection.
    expect((await t.api('DELETE', '/api/v1/scripts/discover')).statusCode).toBe(204);
    const c = (await t.api('GET', '/api/v1/profiles/health-node/health')).json();
    expect(c.runs.map((r: { machine: string }) => r.machine).sort()).toEqual([...names].sort());
    expect(c.missing).toEqual([]);
    expect(c.outliers).toEqual({});
    const read = c.figures.find((f: { figure: string }) => f.figure === 'disk/vda/standalone_read_1M_KBps');
    expect(read.machines).toHaveLength(2);
    expect(read.median).toBeGreaterThan(0);
    for (const f of c.figures) console.log(`health ${f.figure}: ${f.machines.map((m: { machine: string; value: number }) => `${m.machine}=${m.value}`).join(' ')}`);
  }, 15 * 60_000);

  // -- Trees: eDeploy's roles, versions, upgrade and verify --------------------------------

  const FROM = 'D7-F.1.0.0';
  const TO = 'D7-F.1.0.1';
  /** PUT a tar stream as a tree version (what `plinth tree import` sends). */
  const importTree = async (version: string, tar: Readable, length?: number) => {
    const r = await fetch(`${t.url}/api/v1/trees/mysql/${version}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream', ...(length ? { 'content-length': String(length) } : {}) },
      body: Readable.toWeb(tar) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(r.status, await r.clone().text()).toBe(201);
  };
  /** The next version: the stored tree hard-linked (nothing copied), a few files replaced, sent as a tar stream. */
  let nextVersion: Promise<void> | null = null;
  const importNextVersion = async () => {
    const staging = mkdtempSync(join(t.config.dataDir, 'next-'));
    try {
      await execFileAsync('cp', ['-al', `${join(t.config.dataDir, 'trees/install', FROM, 'mysql')}/.`, staging]);
      for (const f of ['etc/issue.net', 'etc/motd']) rmSync(join(staging, f), { force: true }); // hard links: never written through
      writeFiles(staging, {
        'etc/issue.net': `mysql ${TO}\n`,
        'etc/motd': `the motd of ${TO}\n`,
        'etc/mysql/conf.d/local.cnf': '# from the tree\n',
        'etc/mysql/conf.d/absent.cnf': '# from the tree\n',
      });
      const tar = spawn('tar', ['-C', staging, '--numeric-owner', '--xattrs', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await importTree(TO, tar.stdout);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    // The upgrade step: the host's own files (docs/trees.md's list), the role's state, and two scripts.
    const docs = readFileSync(new URL('../../docs/trees.md', import.meta.url), 'utf8');
    const hostOwn = /### The host's own files[\s\S]*?```text\n([\s\S]*?)```/.exec(docs)![1]!;
    const step = {
      exclude: `${hostOwn}/etc/motd\n`,
      add_only: '/etc/mysql/conf.d/local.cnf\n/etc/mysql/conf.d/absent.cnf\n',
      pre: '#!/bin/sh\necho "$ROLE $FROM $TO" > /root/pre-ran\n',
      post: '#!/bin/sh\necho "$ROLE $FROM $TO" > /root/post-ran\nexit 100\n',
    };
    expect((await t.api('PUT', `/api/v1/trees/mysql/${FROM}/upgrades/${TO}`, step)).statusCode).toBe(200);
  };

  /** eDeploy's configure step: RAID1 over the machine's two smallest disks, whatever their names. */
  const RAID_SCRIPT = [
    '#!/bin/sh',
    'set -e',
    `set -- $(lsblk -d -n -b -o NAME,SIZE,TYPE | awk '$3 == "disk"' | sort -k2,2n | awk 'NR <= 2 { print $1 }')`,
    '[ $# -eq 2 ] || { echo "RAID1 needs two disks, this machine has $#" >&2; exit 1; }',
    'disk() { printf \'{"device":"%s","partitions":[{"id":"bios%s","sizeMiB":1,"use":"bios-boot"},{"id":"efi%s","sizeMiB":64,"use":"efi"%s},{"id":"root%s","use":"raid"}]}\' "$1" "$2" "$2" "$3" "$2"; }',
    'printf \'{"disks":[%s,%s],"raid":[{"id":"root","level":1,"members":["roota","rootb"],"use":"fs","fs":"ext4","mount":"/"}]}\' "$(disk "$1" a "")" "$(disk "$2" b \',"mount":"/boot/efi2"\')" > "$PLINTH_OUTPUT_DIR/disk-layout.json"',
    'echo "RAID1 over $1 and $2"',
    '',
  ].join('\n');

  it('deploys role mysql at D7-F.1.0.0 on RAID1 over both disks of both VMs, which boot it: by kexec with a configure script’s layout, and by reboot', async () => {
    const tarball = await treeBuilt;
    await importTree(FROM, createReadStream(tarball), statSync(tarball).size);
    nextVersion = importNextVersion(); // while the VMs deploy
    nextVersion.catch(() => undefined);
    const deploy = [
      { tree: `mysql-${FROM}`, onSuccess: 'kexec', sshKeys: [key.publicKey], scripts: [{ name: 'raid', content: RAID_SCRIPT, timeoutSeconds: 120 }] },
      { tree: `mysql-${FROM}`, onSuccess: 'reboot', sshKeys: [key.publicKey], diskLayout: RAID1_EXAMPLE },
    ];
    const runIds: string[] = [];
    for (const [i, body] of deploy.entries()) {
      const r = await t.api('POST', `/api/v1/machines/${names[i]}/actions/deploy`, body);
      expect(r.statusCode, r.body).toBe(200);
      runIds[i] = r.json().run.id;
    }
    await Promise.all([boot(0), boot(1)]);
    const deployed = await Promise.all(
      [0, 1].map((i) =>
        waitFor(
          `${names[i]} deployed`,
          40 * 60_000,
          async () => {
            const m = await machine(macs[i]!);
            if (m.state === 'deploy-failed') throw new Error(`${m.name}: ${JSON.stringify(m.lastError)}\n${vms[i]!.serialOutput().slice(-3000)}`);
            return m.state === 'deployed' ? m : undefined;
          },
          async () => vms[i]!.serialOutput().slice(-3000),
        ),
      ),
    );
    for (const [i, m] of deployed.entries()) {
      const run = (await t.api('GET', `/api/v1/runs/${runIds[i]}`)).json();
      expect(run.steps.filter((s: any) => s.status !== 'succeeded').map((s: any) => s.name)).toEqual([]);
      const step = (name: string) => run.steps.find((s: any) => s.name === name);
      expect(step('copy-tree').message).toMatch(new RegExp(`^mysql-${FROM} by rsync in `));
      const layout = step('layout-disks');
      expect(layout.message).toMatch(/^vda, vdb: .*\/dev\/md/);
      const bootLoader = step('boot-loader');
      // The latest boot: the deploy's network boot for kexec, the reboot's for reboot.
      const attempts = (await t.api('GET', `/api/v1/machines/${m.name}/trace?attempts=2`)).json().attempts;
      const stages = attempts.at(-1).stages.map((s: any) => s.stage);
      const seconds = (s: any) => ((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(0);
      const commands = attempts.flatMap((a: any) => a.stages).find((s: any) => s.stage === 'step:boot-loader:succeeded')?.detail?.seconds;
      console.log(`tree deploy ${m.name}: ${run.steps.map((s: any) => `${s.name} ${seconds(s)} s`).join(', ')}; boot-loader: ${bootLoader.message} ${JSON.stringify(commands)}`);
      expect(bootLoader.message).toMatch(/^GRUB on \/dev\/vda, \/dev\/vdb, the tree's initramfs/);
      if (i === 0) {
        expect(layout.message).toContain('(the layout of script raid)');
        expect((await scripts(m.name)).find((x) => x.name === 'raid')).toMatchObject({ status: 'passed', output: 'RAID1 over vda and vdb\n' });
        // kexec: the installed kernel started from the installer's, no network boot in between.
        expect(bootLoader.message).toContain('kexec loaded /boot/vmlinuz-');
        expect(stages).toContain('step:boot-loader:succeeded');
        expect(stages).not.toContain('local-boot');
      } else {
        expect(stages).toContain('local-boot');
      }
      const facts = await sshWhenReady(
        host(i),
        'cat /proc/mdstat; echo "root=$(findmnt -n -o SOURCE /)"; for d in vda vdb; do echo "$d: $(sudo dd if=/dev/$d bs=512 count=1 2>/dev/null | grep -c GRUB)"; done; sudo edeploy role; sudo edeploy version',
        15 * 60_000,
      );
      expect(facts.exitCode, facts.stderr).toBe(0);
      const out = facts.stdout;
      expect(out).toMatch(/^md\d+ : active raid1 vd[ab]3\[\d\] vd[ab]3\[\d\]$/m);
      expect(out).toMatch(/\[2\/2\] \[UU\]/);
      expect(out).toMatch(/^root=\/dev\/md/m);
      expect(out).toMatch(/^vda: 1$/m);
      expect(out).toMatch(/^vdb: 1$/m);
      expect(out).toMatch(new RegExp(`^mysql\n${FROM}\n$`, 'm'));
      expect(m.deployment).toMatchObject({ role: 'mysql', version: FROM });
    }
  }, 60 * 60_000);

  it('moves a host to D7-F.1.0.1 with edeploy upgrade (exclude, add_only, pre, post = reboot needed); edeploy verify then lists the one file changed by hand', async () => {
    await nextVersion;
    const run = async (command: string) => {
      const r = await ssh(host(0), command, 20 * 60_000);
      expect(r.exitCode, `${command}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    // The host's own content before the upgrade: an excluded file, and one of the two add_only files.
    await run("echo 'the local motd' | sudo tee /etc/motd >/dev/null; sudo mkdir -p /etc/mysql/conf.d; echo '# the host' | sudo tee /etc/mysql/conf.d/local.cnf >/dev/null");
    expect(await run('sudo edeploy list')).toBe(`${TO}\n`);
    expect(await run(`sudo edeploy upgrade ${TO}`)).toContain(`upgraded mysql from ${FROM} to ${TO}: reboot needed`);
    const files = await run('cat /etc/issue.net /etc/motd /etc/mysql/conf.d/local.cnf /etc/mysql/conf.d/absent.cnf; sudo cat /root/pre-ran /root/post-ran; sudo edeploy version');
    expect(files).toBe([`mysql ${TO}`, 'the local motd', '# the host', '# from the tree', `mysql ${FROM} ${TO}`, `mysql ${FROM} ${TO}`, TO, ''].join('\n'));
    // A file changed by hand is what verify finds, and nothing else (the host's own files are excluded).
    await run("echo 'changed by hand' | sudo tee -a /etc/issue >/dev/null");
    expect(await run('sudo edeploy verify')).toBe('etc/issue\n');
    const m = await waitFor('the controller to show the new version', 60_000, async () => {
      const x = await machine(macs[0]!);
      return x.deployment?.version === TO ? x : undefined;
    });
    expect(m.deployment).toMatchObject({ role: 'mysql', version: TO });
    const reported = (await t.api('GET', `/api/v1/machines/${m.name}/events`)).json().items.filter((e: any) => e.action === 'version-reported');
    expect(reported.at(-1)).toMatchObject({ actor: expect.stringMatching(/^host:/), details: expect.objectContaining({ version: TO, previous: FROM, result: 'upgraded', rebootNeeded: true }) });
  }, 30 * 60_000);

  it('marks the machine whose commissioning script fails with the script’s name and output', async () => {
    const scriptsGiven = [
      { name: 'cpu-ok', content: '#!/bin/sh\ngrep -c ^processor /proc/cpuinfo\n', timeoutSeconds: 120 },
      { name: 'memtest', content: '#!/bin/sh\necho "testing $(grep MemTotal /proc/meminfo)"\necho "bad DIMM A1" >&2\nexit 3\n', timeoutSeconds: 120 },
    ];
    // The host that booted its tree by reboot is taken back as it is (no wipe: no boot), then commissioned.
    await vms[1]!.stop();
    const released = await t.api('POST', `/api/v1/machines/${names[1]}/actions/release`, { wipe: 'none' });
    expect(released.statusCode, released.body).toBe(200);
    const r = await t.api('POST', `/api/v1/machines/${names[1]}/actions/inspect`, { scripts: scriptsGiven });
    expect(r.statusCode, r.body).toBe(200);
    await boot(1);
    // A failed run leaves the installer up (its /init restarts the agent, which the controller
    // now refuses): wait for the machine's state, then pull the plug.
    const m = await waitFor('the commissioning run to fail', 12 * 60_000, async () => {
      const x = await machine(macs[1]!);
      return x.state === 'inspecting' || x.state === 'inspect-wait' ? undefined : x;
    }, async () => vms[1]!.serialOutput().slice(-3000));
    await vms[1]!.stop();
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'script', stage: 'script-memtest', message: 'script memtest exited 3: bad DIMM A1' });
    const byName = Object.fromEntries((await scripts(m.name)).map((s) => [s.name, s]));
    expect(byName['cpu-ok']).toMatchObject({ status: 'passed', output: '1\n' });
    expect(byName['memtest']).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(byName['memtest'].output).toMatch(/^testing MemTotal: +\d+ kB\nbad DIMM A1\n$/);
  }, 15 * 60_000);
});
