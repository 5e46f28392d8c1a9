import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installerArtifacts, installerCacheDir, type BuildInstallerResult } from '../../src/installer/index.js';
import { Vm } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { InstallerReportServer } from '../support/installer-report-server.js';
import { testAgentSource, type TestAgentReport } from '../support/installer-test-agent.js';
import { buildInstallerWhenFree } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * Builds the installer from Debian packages (real debootstrap: minutes), checks the layer
 * cache, then boots it in a QEMU VM under software emulation and checks what the agent
 * inside reported about the machine.
 *
 * Needs root, debootstrap's host tools (installed when missing) and deb.debian.org.
 * PLINTH_TEST_INSTALLER_DATA_DIR's layer cache is used (and kept) when set; otherwise a fresh
 * one is made and removed. The installer is published in a data directory of this file's own:
 * its test agent must never replace the installer other files boot at the same time.
 */
const isRoot = process.getuid?.() === 0;
const keptDataDir = process.env.PLINTH_TEST_INSTALLER_DATA_DIR;

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const machine = {
  serial: 'PLINTH-E2E-0042',
  uuid: '6a1f4c3e-92b1-4d8e-9a55-0c1d2e3f4a5b',
  disks: { vda: 3 * GiB, nvme0n1: 1 * GiB },
  runId: 'run-e2e-7',
  token: 'tok-e2e-secret-1',
};

// Unique per run, so that a kept data directory never has these agent layers cached yet.
const runNonce = Date.now().toString(36);
const agentA = `A-${runNonce}`;
const agentB = `B-${runNonce}`;

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const mtime = (path: string) => statSync(path).mtimeMs;

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe.skipIf(!isRoot)('installer: build from Debian packages and boot in QEMU (TCG)', () => {
  let scratch: string;
  let dataDir: string;
  let cacheDir: string;
  let agentBundle: string;
  let server: InstallerReportServer<TestAgentReport>;
  let vm: Vm | null = null;
  let built: BuildInstallerResult;
  const buildLog: string[] = [];
  /** Builds, printing the build log in one piece (also when the build fails). */
  const build = async (): Promise<{ result: BuildInstallerResult; ms: number }> => {
    buildLog.length = 0;
    const started = Date.now();
    try {
      const result = await buildInstallerWhenFree({ dataDir, cacheDir, agentBundle, log: (line) => buildLog.push(line) });
      return { result, ms: Date.now() - started };
    } finally {
      console.log(`installer build log:\n  ${buildLog.join('\n  ')}`);
    }
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'plinth-installer-e2e-'));
    dataDir = join(scratch, 'data');
    cacheDir = keptDataDir ? installerCacheDir(keptDataDir) : installerCacheDir(dataDir);
    agentBundle = join(scratch, 'agent.mjs');
    writeFileSync(agentBundle, testAgentSource(agentA));
    server = await InstallerReportServer.start<TestAgentReport>();
  });

  afterAll(async () => {
    await vm?.stop();
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('builds a kernel and a layered initramfs from Debian packages', { timeout: 45 * 60_000 }, async () => {
    const { result, ms } = await build();
    built = result;
    console.log(`installer build: ${(ms / 1000).toFixed(1)} s, cache hit: ${built.cacheHit}`);

    const m = built.manifest;
    expect(existsSync(built.kernel)).toBe(true);
    expect(existsSync(built.initramfs)).toBe(true);
    expect(sha256(built.kernel)).toBe(m.artifacts.kernel.sha256);
    expect(sha256(built.initramfs)).toBe(m.artifacts.initramfs.sha256);
    expect(built.initramfsBytes).toBe(statSync(built.initramfs).size);
    expect(built.initramfsBytes).toBeLessThan(200e6);
    // initrd.img is exactly the layers, in order.
    expect(m.layers.map((l) => l.name)).toEqual(['base', 'agent']);
    expect(m.layers.reduce((sum, l) => sum + l.bytes, 0)).toBe(built.initramfsBytes);

    expect(m.kernel.package).toMatch(/^linux-image-\d.*-amd64$/);
    expect(m.kernel.modules).toBeGreaterThan(100);
    for (const pkg of ['dmidecode', 'util-linux', 'pciutils', 'ipmitool', 'nvme-cli', 'qemu-utils', 'udev', 'busybox']) {
      expect(m.packages, pkg).toHaveProperty(pkg);
    }
    expect(m.inputs.node.version).toBe(process.version);
    expect(installerArtifacts(dataDir)?.initramfs).toEqual({
      path: built.initramfs,
      bytes: built.initramfsBytes,
      sha256: m.artifacts.initramfs.sha256,
    });
    const size = (bytes: number) => (bytes < MiB ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / MiB).toFixed(1)} MiB`);
    console.log(
      `initramfs ${size(built.initramfsBytes)}: ` +
        m.layers.map((l) => `${l.name} ${size(l.bytes)} (${size(l.uncompressedBytes)} unpacked)`).join(', '),
    );
  });

  it('is a cache hit when nothing changed: no debootstrap, nothing rewritten', { timeout: 5 * 60_000 }, async () => {
    const before = [built.kernel, built.initramfs, join(built.dir, 'manifest.json')].map(mtime);
    const { result: again, ms } = await build();
    console.log(`warm build (cache hit): ${(ms / 1000).toFixed(1)} s`);

    expect(again.cacheHit).toBe(true);
    expect(again.manifest).toEqual(built.manifest);
    expect(buildLog.some((l) => /debootstrap/.test(l))).toBe(false);
    expect([again.kernel, again.initramfs, join(again.dir, 'manifest.json')].map(mtime)).toEqual(before);
  });

  it('re-packs only the agent layer when the agent bundle changes', { timeout: 5 * 60_000 }, async () => {
    const [baseBefore, agentBefore] = built.manifest.layers;
    const baseLayerFile = join(cacheDir, baseBefore!.file);
    const baseLayerMtime = mtime(baseLayerFile);
    writeFileSync(agentBundle, testAgentSource(agentB));
    const { result: rebuilt, ms } = await build();
    console.log(`agent-only rebuild: ${(ms / 1000).toFixed(1)} s`);

    expect(rebuilt.cacheHit).toBe(false);
    const [base, agent] = rebuilt.manifest.layers;
    expect(base).toMatchObject({ name: 'base', key: baseBefore!.key, sha256: baseBefore!.sha256, cacheHit: true });
    expect(agent).toMatchObject({ name: 'agent', cacheHit: false });
    expect(agent!.key).not.toBe(agentBefore!.key);
    expect(rebuilt.manifest.artifacts.kernel.sha256).toBe(built.manifest.artifacts.kernel.sha256);
    expect(buildLog.some((l) => /debootstrap/.test(l))).toBe(false);
    expect(mtime(baseLayerFile)).toBe(baseLayerMtime);
    built = rebuilt;
  });

  it('boots in a QEMU VM and its agent reports the machine to plinth.url', { timeout: 10 * 60_000 }, async () => {
    const vmDir = join(scratch, 'vm');
    vm = new Vm(
      {
        name: 'installer-e2e',
        memoryMiB: 1024,
        smbios: { serial: machine.serial, uuid: machine.uuid, manufacturer: 'Plinth Lab', product: 'E2E' },
        disks: [
          { path: join(vmDir, 'vda.qcow2'), sizeBytes: machine.disks.vda, bus: 'virtio' },
          { path: join(vmDir, 'nvme.qcow2'), sizeBytes: machine.disks.nvme0n1, bus: 'nvme', serial: 'NVME-E2E-1' },
        ],
        nics: [{ mac: '52:54:00:4c:11:01', model: 'virtio-net-pci' }],
        bootOrder: ['disk'],
        kernel: {
          kernel: built.kernel,
          initrd: built.initramfs,
          append: [
            'console=ttyS0,115200',
            `plinth.url=http://10.0.2.2:${server.port}`,
            `plinth.run=${machine.runId}`,
            `plinth.token=${machine.token}`,
          ].join(' '),
        },
      },
      { dir: vmDir, launcher: TEST_QEMU_LAUNCHER },
    );
    const consoleTail = () => `console tail:\n${vm!.serialOutput().slice(-3000)}`;

    const poweredOn = Date.now();
    await vm.start();
    // Milestones first: a failure says how far the boot got.
    await vm.waitForSerial(/plinth-installer: init started/, 120_000);
    await vm.waitForSerial(/plinth-installer: network up on \S+ 10\.0\.2\.15/, 120_000);
    await vm.waitForSerial(/plinth-installer: starting agent \(attempt 1\)/, 60_000);
    const hello = await server.waitFor((r) => r.attempt === 1, 120_000, consoleTail);
    const helloMs = hello.receivedAt - poweredOn;
    console.log(`power-on to agent hello: ${(helloMs / 1000).toFixed(1)} s (guest uptime ${hello.body.uptimeSeconds.toFixed(1)} s)`);
    console.log(`/init's log:\n${hello.body.initLog}`);

    const report = hello.body;
    expect(report.variant).toBe(agentB);
    expect(report.serial).toBe(machine.serial);
    expect(report.nodeVersion).toBe(process.version);
    const words = report.cmdline.split(/\s+/);
    expect(words).toContain(`plinth.run=${machine.runId}`);
    expect(words).toContain(`plinth.token=${machine.token}`);
    expect(words).toContain(`plinth.url=http://10.0.2.2:${server.port}`);
    const disks = (JSON.parse(report.lsblk) as { blockdevices: { name: string; size: number; type: string }[] }).blockdevices;
    const sizes = Object.fromEntries(disks.filter((d) => d.type === 'disk').map((d) => [d.name, d.size]));
    expect(sizes).toEqual(machine.disks);
    // QEMU's user-mode network hands out its own DNS server at 10.0.2.3.
    expect(report.resolvConf).toMatch(/^nameserver 10\.0\.2\.3$/m);
    expect(report.efivarsMounted).toBe(false);

    // /init restarts an agent that failed, and the agent's poweroff ends the VM.
    const second = await server.waitFor((r) => r.attempt === 2, 60_000, consoleTail);
    expect(second.body.serial).toBe(machine.serial);
    expect(await vm.waitForExit(60_000)).toBe(0);
    const output = vm.serialOutput();
    expect(output).toMatch(/plinth-installer: agent exited with status 3; restarting in 1 s/);
    expect(output).toMatch(/test agent: hello answered 204 \(attempt 1\)/);
  });
});
