import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { sharedInstaller, testRegistry, waitFor } from '../support/e2e.js';
import { freshController } from '../support/controller.js';
import { sqliteBackend } from '../support/backends.js';
import { inProcessCli } from '../support/cli.js';
import { makeFacts } from '../support/facts.js';
import { freePort } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';
import { buildTinyOs, type TinyOsImage } from '../support/tiny-os.js';

/**
 * One image to three machines in one multicast session, on a real provisioning network: a
 * bridge in a network namespace, the controller (in this process) on it through a veth with its
 * supervised dnsmasq as the network's only DHCP server and its udp-sender, and three BIOS VMs on
 * taps that network-boot the real installer (iPXE ROM, DHCP, the installer's own DHCP and
 * agent). Two boot together and receive the image by udpcast; the third is powered on once a VM
 * slot frees (the machine runs two VMs at most), so its hello comes after the transfer and it
 * completes over HTTP. Each then boots the OS it was given from its own disk — a real, tiny one
 * (test/support/tiny-os.ts: syslinux, the installer's Debian kernel, busybox) that reads the
 * NoCloud seed the deploy wrote, reports its first boot to the controller and powers off.
 * Asserted: what each machine's run and trace say it received by which transport, what the OS
 * printed on its serial console, and the machine `deployed` by its own report.
 */
const canRun = isRoot() || process.env.CI === 'true';
const GiB = 2 ** 30;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

holdVmSlots(2); // two VMs at once: both of the machine's slots (docs/testing.md)

type Controller = Awaited<ReturnType<typeof freshController>>;
const MACHINES = [
  { name: 'mc-a', mac: '52:54:00:e2:3c:01', uuid: '3c0e0001-0000-4000-8000-00000000e301', tap: 'tap0' },
  { name: 'mc-b', mac: '52:54:00:e2:3c:02', uuid: '3c0e0002-0000-4000-8000-00000000e302', tap: 'tap1' },
  { name: 'mc-c', mac: '52:54:00:e2:3c:03', uuid: '3c0e0003-0000-4000-8000-00000000e303', tap: 'tap0' },
] as const;
type Machine = (typeof MACHINES)[number];

describe.skipIf(!canRun)('three VMs deploy one image in one multicast session on a bridge', () => {
  let net: TestNetwork;
  let t: Controller;
  let image: TinyOsImage;
  let release: string;
  const vms: Vm[] = [];
  const txSamples: { at: number; bytes: number }[] = [];
  let sampler: NodeJS.Timeout | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-e2e-mcast-'));

  beforeAll(async () => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2', 'udpcast'], () => hasCommand('dnsmasq') && hasCommand('ip') && hasCommand('udp-sender'));
    const installer = await sharedInstaller();
    release = `tiny-os ${randomBytes(6).toString('hex')}`;
    image = await buildTinyOs(installer, { release });
    net = createTestNetwork({});
    for (const tap of ['tap0', 'tap1']) net.addTap(tap);
    const hostIf = net.joinHost('10.80.0.1/24');
    // The controller's egress on the provisioning network, sampled for the figures (every byte on the wire).
    const counter = `/sys/class/net/${hostIf}/statistics/tx_bytes`;
    sampler = setInterval(() => txSamples.push({ at: Date.now(), bytes: Number(readFileSync(counter, 'utf8')) }), 500);
    const port = await freePort();
    t = await freshController(
      sqliteBackend,
      {
        listen: `0.0.0.0:${port}`,
        publicUrl: `http://10.80.0.1:${port}`,
        dhcp: { mode: 'full', interface: hostIf, range: '10.80.0.100,10.80.0.150,255.255.255.0' },
        deploy: { multicastInterface: hostIf },
      },
      // The address is given: the veth may not have its carrier yet, and Node lists only running interfaces.
      { installer: () => installer, registry: testRegistry(), dhcp: { serverAddress: '10.80.0.1' } },
    );
    // dnsmasq reads the hosts directory as an unprivileged user: it must be able to enter the data directory.
    chmodSync(t.config.dataDir, 0o711);
    await t.controller.listen();
    const up = await t.inject('POST', `/api/v1/images?name=tiny-os&sha256=${sha256(image.bytes)}`, { token: t.adminToken, body: image.bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
    for (const m of MACHINES) await inspected(m);
  }, 20 * 60_000);

  afterAll(async () => {
    clearInterval(sampler);
    await Promise.all(vms.map((vm) => vm.stop()));
    await t?.close();
    net?.remove();
    rmSync(dir, { recursive: true, force: true });
    rmSync(image?.path ?? join(dir, 'none'), { force: true });
  });

  /** Enrolled and inspected by playing its agent over HTTP (the VMs boot only to deploy). */
  async function inspected(m: Machine) {
    const host = { host: new URL(t.config.publicUrl).host };
    const script = (await t.inject('GET', `/boot/machine.ipxe?uuid=${m.uuid}&mac=${m.mac}`, { headers: host })).body;
    const token = /plinth\.token=(\S+)/.exec(script)![1]!;
    expect((await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const facts = await t.inject('POST', '/agent/v1/facts', { token, body: makeFacts({ uuid: m.uuid, serial: m.name.toUpperCase(), macs: [m.mac], disks: [['vda', 1 * GiB]] }) });
    expect(facts.statusCode, facts.body).toBe(200);
    const found = (await t.api('GET', `/api/v1/machines?q=${m.mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${found.id}`, { name: m.name });
    expect((await t.api('GET', `/api/v1/machines/${m.name}`)).json().state).toBe('available');
  }

  const poweredOn: Record<string, number> = {};
  /** Powers the machine's VM on (network first, then its disk); it powers itself off once its OS reported in. */
  async function powerOn(m: Machine): Promise<Vm> {
    poweredOn[m.name] = Date.now();
    const disk = join(dir, `${m.name}.raw`);
    writeFileSync(disk, '');
    truncateSync(disk, 1 * GiB);
    const vm = new Vm(
      { name: m.name, firmware: 'bios', memoryMiB: 1536, smbios: { uuid: m.uuid, serial: m.name.toUpperCase() }, disks: [{ path: disk, format: 'raw' }], nics: [{ mac: m.mac, tap: m.tap }] },
      { dir, launcher: [...net.prefix('core'), ...TEST_QEMU_LAUNCHER] },
    );
    vms.push(vm);
    await vm.start();
    return vm;
  }

  /** The detail of a stage of the machine's boot trace (its last three boots). */
  const stageDetail = async (name: string, stage: string) =>
    ((await t.api('GET', `/api/v1/machines/${name}/trace?attempts=3`)).json().attempts as { stages: { stage: string; detail: unknown }[] }[]).flatMap((a) => a.stages).find((s) => s.stage === stage)?.detail;
  const state = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json().state as string;

  /** Waits until the VM is off, then checks what its OS printed and that the controller took its report. */
  async function installedOsReported(m: Machine, vm: Vm) {
    await vm.waitForExit(25 * 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; machine ${await state(m.name)}; console tail:\n${vm.serialOutput().slice(-3000)}`);
    });
    const out = vm.serialOutput();
    // The OS on its own disk: its kernel started with its uuid, its root is the image's, and the controller answered its report.
    expect(out, out.slice(-3000)).toContain(`plinth-tiny-os: booted uuid=${m.uuid}`);
    expect(out).toContain(`plinth-tiny-os: root ${release}`);
    expect(out).toContain(`plinth-tiny-os: reported {"machine":"${m.name}","state":"deployed"}`);
    const machine = (await t.api('GET', `/api/v1/machines/${m.name}`)).json();
    expect(machine.state).toBe('deployed');
    expect(machine.deployment).toMatchObject({ image: 'tiny-os' });
    expect(await stageDetail(m.name, 'installed-os')).toEqual({ event: 'first-boot' });
    return { machine, written: (await stageDetail(m.name, 'step:write-image:succeeded')) as { transport: string; bytesReceived: { multicast: number; http: number } } | undefined };
  }

  it('two receive the image by udpcast, the late third over HTTP; all three boot their OS and report in', async () => {
    const cli = inProcessCli({ PLINTH_URL: t.config.publicUrl.replace('10.80.0.1', '127.0.0.1'), PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    // At least two receivers: the session starts when both first VMs joined (the wait only bounds a failure).
    // The cap is what a VM under emulation writes (2–4 MiB/s): at 100 Mbit/s they missed 46% of the blocks.
    const deployed = await cli('machine', 'deploy', ...MACHINES.map((m) => m.name), '--image', 'tiny-os', '--multicast', '--rate', '24M', '--min-receivers', '2', '--max-wait', '10m', '--json');
    expect(deployed.code, deployed.stderr).toBe(0);
    const runs = JSON.parse(deployed.stdout) as { machine: { name: string }; run: { id: string } }[];
    const sessions = await Promise.all(runs.map(async (r) => (await t.api('GET', `/api/v1/runs/${r.run.id}`)).json().params.multicast?.session));
    expect(new Set(sessions).size, JSON.stringify(sessions)).toBe(1);
    expect(sessions[0]).toBeTruthy();

    const [a, b] = await Promise.all([powerOn(MACHINES[0]), powerOn(MACHINES[1])]);
    const first = await Promise.all([installedOsReported(MACHINES[0], a), installedOsReported(MACHINES[1], b)]);
    for (const { written } of first) {
      expect(written, JSON.stringify(written)).toMatchObject({ transport: 'multicast', bytesReceived: { multicast: image.bytes.length, http: 0 } });
    }

    // The image crossed the network once for both: the controller's egress for the session, retransmissions included.
    const session = (await t.api('GET', '/api/v1/multicast-sessions')).json().items[0];
    expect(session, JSON.stringify(session)).toMatchObject({ id: sessions[0], image: 'tiny-os', state: 'done', receivers: 2, error: null });
    expect(session.members.sort()).toEqual(runs.map((r) => r.run.id).sort());
    expect(session.bytesSent).toBeGreaterThanOrEqual(image.bytes.length);
    console.log(`multicast session: ${session.bytesSent} image bytes sent to 2 VMs, ${session.retransmitPercent}% retransmitted: egress ≈ ${((session.bytesSent / image.bytes.length) * (1 + session.retransmitPercent / 100)).toFixed(2)}× the image`);

    // The third powers on now that a slot is free: the session has sent the image, so its hello gets none.
    const c = await powerOn(MACHINES[2]);
    const late = await installedOsReported(MACHINES[2], c);
    // Over HTTP by the image's chunk index: its zero chunks are written without being fetched.
    expect(late.written?.transport, JSON.stringify(late.written)).toBe('http');
    expect(late.written?.bytesReceived?.multicast ?? 0).toBe(0);

    // Each run says how it went, step by step.
    const figures: Record<string, unknown>[] = [];
    for (const r of runs) {
      const run = (await t.api('GET', `/api/v1/runs/${r.run.id}`)).json();
      expect(run.status, `${r.machine.name}: ${JSON.stringify(run.steps)}`).toBe('succeeded');
      const write = run.steps.find((s: { name: string }) => s.name === 'write-image');
      console.log(`${r.machine.name}: write-image: ${write.message}`);
      const deployedAt = (await t.api('GET', `/api/v1/machines/${r.machine.name}`)).json().deployment.deployedAt;
      figures.push({
        machine: r.machine.name,
        ...((await stageDetail(r.machine.name, 'step:write-image:succeeded')) as object),
        writeSeconds: (Date.parse(write.finishedAt) - Date.parse(write.startedAt)) / 1000,
        powerOnToDeployedSeconds: (Date.parse(deployedAt) - poweredOn[r.machine.name]!) / 1000,
      });
      if (r.machine.name === 'mc-c') expect(write.message).not.toMatch(/multicast/);
      else expect(write.message).toMatch(/by multicast \(multicast [\d.]+ MiB, HTTP 0 bytes\)/);
    }
    // `npm run bench multicast-vms` runs this file for its figures (bench/multicast-vms.ts).
    const out = process.env.PLINTH_MULTICAST_VM_FIGURES;
    if (out) {
      // The wire between the last sample before the session started and the first after it ended.
      const from = txSamples.filter((x) => x.at <= Date.parse(session.startedAt)).at(-1);
      const to = txSamples.find((x) => x.at >= Date.parse(session.endedAt));
      const sessionEgressBytes = from && to ? to.bytes - from.bytes : null;
      writeFileSync(out, JSON.stringify({ imageBytes: image.bytes.length, rateBitsPerSecond: session.rateBitsPerSecond, sessionEgressBytes, session, machines: figures }, null, 2));
    }
  }, 45 * 60_000);
});
