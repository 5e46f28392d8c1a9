import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabDir, LabProvider } from '../../src/lab/provider.js';
import type { VmSpec } from '../../src/lab/vm.js';
import { adoptSharedImage, e2eController, sharedImage, waitFor } from '../support/e2e.js';
import { freePort, generateSshKey, sshWhenReady, type SshKey } from '../support/image-ssh.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * From an unknown VM to an installed OS that Ansible can reach, and back, on real VMs (TCG)
 * in Plinth's own QEMU lab: enlisted through the `qemu` appliance, inspected, matched to a
 * profile whose pool names it, deployed with the image `plinth image build` makes, reached
 * over SSH with the key given at deploy, released with a quick wipe; a second VM deploys in
 * UEFI mode with its image download cut once and resumed.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const GiB = 2 ** 30;
const ctx = { timeoutMs: 10_000, log: { debug() {}, info() {}, warn() {} } };

const slots = holdVmSlots(2); // two VMs at once while inspecting, then one (docs/testing.md)

describe('deploying real VMs', () => {
  let t: E2E;
  let lab: LabDir;
  let key: SshKey;
  let image: string;
  const ports = { bios: 0, uefi: 0 };
  let mirror: Server;
  let mirrorPort = 0;
  const mirrorRequests: { range: string | undefined; cut: boolean }[] = [];

  const machine = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json();
  const console_ = (vm: string) => {
    try {
      return readFileSync(join(lab.runDir, `${vm}.serial.log`), 'utf8').slice(-2500);
    } catch {
      return '(no console)';
    }
  };
  const until = (name: string, state: string, minutes: number) =>
    waitFor<any>(`${name} ${state}`, minutes * 60_000, async () => {
      const m = await machine(name);
      if (m.state.endsWith('-failed')) throw new Error(`${name} is ${m.state}: ${JSON.stringify(m.lastError)}\n${console_(name)}`);
      return m.state === state ? m : undefined;
    }, async () => `${name} is ${(await machine(name)).state}\n${console_(name)}`);

  beforeAll(async () => {
    const [{ dir: imageDir, name: imageName }] = await Promise.all([sharedImage()]);
    t = await e2eController({ providers: { timeout: '60s' } });
    t.controller.power.start();
    image = await adoptSharedImage(t);
    key = await generateSshKey(mkdtempSync(join(tmpdir(), 'plinth-e2e-key-')));
    lab = new LabDir(join(t.config.dataDir, 'lab'));
    ports.bios = await freePort();
    ports.uefi = await freePort();
    const vm = (name: string, firmware: 'bios' | 'uefi', serial: string, mac: string, sshPort: number): VmSpec => ({
      name,
      firmware,
      // UEFI firmware keeps more of 1 GiB than BIOS: the installer's layers need the room.
      memoryMiB: firmware === 'uefi' ? 1536 : 1024,
      smbios: { serial, manufacturer: 'Plinth Labs', product: 'Deploy Target' },
      disks: [{ path: join(lab.dir, 'disks', `${name}.qcow2`), sizeBytes: 6 * GiB }],
      nics: [{ mac, bootUrl: t.bootUrl, hostForwards: [{ hostPort: sshPort, guestPort: 22 }] }],
      bootOrder: ['network', 'disk'],
    });
    lab.write(vm('dep-bios', 'bios', 'DEP-BIOS-1', '52:54:00:d7:00:01', ports.bios));
    lab.write(vm('dep-uefi', 'uefi', 'DEP-UEFI-1', '52:54:00:d7:00:02', ports.uefi));

    // A mirror near the machines serving the same image; it cuts the first download once.
    const imagePath = join(imageDir, `${imageName}.raw`);
    const size = statSync(imagePath).size;
    mirror = createServer((req, res) => {
      const range = req.headers.range;
      const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
      const start = m ? Number(m[1]) : 0;
      const cut = mirrorRequests.length === 0;
      mirrorRequests.push({ range, cut });
      res.writeHead(m ? 206 : 200, {
        'content-length': size - start,
        etag: '"e2e-image"',
        'accept-ranges': 'bytes',
        ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
      });
      let sent = 0;
      const stream = createReadStream(imagePath, { start });
      stream.on('data', (chunk) => {
        sent += (chunk as Buffer).length;
        if (cut && sent > 300 * 2 ** 20) {
          stream.destroy();
          res.destroy();
        }
      });
      stream.pipe(res);
    });
    mirrorPort = await new Promise<number>((r) => mirror.listen(0, '127.0.0.1', () => r((mirror.address() as { port: number }).port)));

    expect((await t.api('POST', '/api/v1/appliances', { name: 'lab', type: 'qemu', address: lab.dir })).statusCode).toBe(201);
    const applied = await t.api('POST', '/api/v1/profiles/apply', {
      pools: [{ name: 'web', entries: [{ hostname: 'web-07', ip: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: ['10.0.2.3'] }] }],
      profiles: [{ name: 'web', spec: [['system', 'product', 'serial', 'DEP-BIOS-1']], pool: 'web', quota: 1, deploy: { image } }],
    });
    expect(applied.statusCode, applied.body).toBe(200);
  }, 20 * 60_000);

  afterAll(async () => {
    // The controller stops first: a power job still queued (a redeploy's power-on behind an
    // abort) would otherwise start a VM again after it was switched off here, and the lab
    // directory goes with the controller's data directory.
    await t?.controller.close();
    if (lab) {
      const p = new LabProvider({ address: lab.dir });
      for (const n of lab.names()) await p.power.setPowerState(n, 'off', ctx).catch(() => undefined);
    }
    mirror?.close();
    await t?.close();
  });

  it('enlists the lab and inspects its VMs, matching the BIOS one to the web profile and its pool', async () => {
    const e = await t.api('POST', '/api/v1/appliances/lab/enlist', { inspect: true });
    expect(e.statusCode, e.body).toBe(200);
    expect(e.json().items.map((i: any) => [i.machine.name, i.outcome, i.inspecting])).toEqual([
      ['dep-bios', 'created', true],
      ['dep-uefi', 'created', true],
    ]);
    const bios = await until('dep-bios', 'available', 10);
    await until('dep-uefi', 'available', 10);
    expect(bios.match).toMatchObject({ profile: 'web', vars: { hostname: 'web-07', ip: '10.0.2.15' } });
    expect((await machine('dep-uefi')).match?.profile ?? null).toBeNull();
    // From here on one VM runs at a time: once both are off, the other slot goes back.
    for (const n of ['dep-bios', 'dep-uefi']) await waitFor(`${n} off`, 2 * 60_000, async () => ((await new LabProvider({ address: lab.dir }).power.getPowerState(n, ctx)) === 'off' ? true : undefined));
    await slots.keep(1);
  }, 25 * 60_000);

  let biosRun = '';
  it('deploys the BIOS VM: the installed OS reports in, has the pool hostname, and the SSH key works', async () => {
    const r = await t.api('POST', '/api/v1/machines/dep-bios/actions/deploy', { sshKeys: [key.publicKey] });
    expect(r.statusCode, r.body).toBe(200);
    biosRun = r.json().run.id;
    const m = await until('dep-bios', 'deployed', 20);
    expect(m.deployment).toMatchObject({ image, address: '10.0.2.15' });
    const hostname = await sshWhenReady({ key, port: ports.bios, user: 'plinth' }, 'hostname', 5 * 60_000);
    expect(hostname.stdout.trim()).toBe('web-07');
    const run = (await t.api('GET', `/api/v1/runs/${biosRun}`)).json();
    expect(run.steps.filter((s: any) => s.status !== 'succeeded').map((s: any) => s.name)).toEqual([]);
    const write = run.steps.find((s: any) => s.name === 'write-image');
    // From the controller, by the image's chunk index: zero chunks were not fetched.
    expect(write.message).toMatch(/: fetched [\d.]+ [KMG]iB, zero-filled [\d.]+ [KMG]iB, every chunk verified/);
    const trace = (await t.api('GET', '/api/v1/machines/dep-bios/trace?attempts=2')).json().attempts.flatMap((a: any) => a.stages);
    const written = trace.find((s: any) => s.stage === 'step:write-image:succeeded').detail;
    expect(written.chunks.zeroFilledBytes).toBeGreaterThan(0);
    expect(written.chunks.fetchedBytes + written.chunks.zeroFilledBytes).toBe(written.bytes);
    const stages = trace.map((s: any) => s.stage);
    for (const s of ['agent-hello', 'image', 'step:write-image:succeeded', 'boot-local', 'local-boot', 'installed-os']) expect(stages).toContain(s);
  }, 25 * 60_000);

  it('releases it with a quick wipe: back to available, no partition table left', async () => {
    const r = await t.api('POST', '/api/v1/machines/dep-bios/actions/release', { wipe: 'quick' });
    expect(r.statusCode, r.body).toBe(200);
    await until('dep-bios', 'available', 10);
    // The agent powers the VM off when done; wait for QEMU to let go of the disk.
    await waitFor('dep-bios off', 2 * 60_000, async () => ((await new LabProvider({ address: lab.dir }).power.getPowerState('dep-bios', ctx)) === 'off' ? true : undefined));
    const disk = join(lab.dir, 'disks', 'dep-bios.qcow2');
    const head = join(mkdtempSync(join(tmpdir(), 'plinth-e2e-wipe-')), 'head.raw');
    execFileSync('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `if=${disk}`, `of=${head}`, 'bs=1M', 'count=64']);
    expect(readFileSync(head).every((b) => b === 0)).toBe(true);
    const probe = (() => {
      try {
        return execFileSync('blkid', ['-p', head], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    expect(probe).toBe('');
    const m = await machine('dep-bios');
    expect(m.deployment.image).toBeNull();
    // The profile keeps its pool entry reserved for this machine (eDeploy's way).
    expect(m.match.poolEntry).not.toBeNull();
  }, 15 * 60_000);

  it('deploys the UEFI VM from a mirror that cuts the download once: it resumes, verifies, boots', async () => {
    const r = await t.api('POST', '/api/v1/machines/dep-uefi/actions/deploy', { image, imageUrl: `http://10.0.2.2:${mirrorPort}/${image}.raw`, sshKeys: [key.publicKey] });
    expect(r.statusCode, r.body).toBe(200);
    const runId = r.json().run.id;
    await until('dep-uefi', 'deployed', 20);
    expect(mirrorRequests[0]).toMatchObject({ range: undefined, cut: true });
    expect(mirrorRequests.slice(1).some((q) => q.range?.startsWith('bytes='))).toBe(true);
    const write = (await t.api('GET', `/api/v1/runs/${runId}`)).json().steps.find((s: any) => s.name === 'write-image');
    expect(write.message).toMatch(/sha256 verified, resumed \d+ time/);
    const hostname = await sshWhenReady({ key, port: ports.uefi, user: 'plinth' }, 'hostname; test -d /sys/firmware/efi && echo uefi', 5 * 60_000);
    // No profile, no pool: the installed hostname is the machine's Plinth name.
    expect(hostname.stdout.trim().split('\n')).toEqual(['dep-uefi', 'uefi']);
  }, 25 * 60_000);

  it('redeploys with --reuse-run and hands out byte-identical artifacts', async () => {
    const runs = (await t.api('GET', '/api/v1/machines/dep-uefi/runs')).json().items;
    const deployRun = runs.find((x: any) => x.kind === 'deploy' && x.status === 'succeeded');
    const before = (await t.api('GET', `/api/v1/runs/${deployRun.id}/artifacts`)).json().items;
    const r = await t.api('POST', '/api/v1/machines/dep-uefi/actions/redeploy', { reuseRun: deployRun.id });
    expect(r.statusCode, r.body).toBe(200);
    const after = (await t.api('GET', `/api/v1/runs/${r.json().run.id}/artifacts`)).json().items;
    expect(after.map((a: any) => [a.name, a.sha256])).toEqual(before.map((a: any) => [a.name, a.sha256]));
    // Not booting it a second time here: abort, which powers it off.
    expect((await t.api('POST', '/api/v1/machines/dep-uefi/actions/abort', {})).json().machine.state).toBe('deploy-failed');
  }, 5 * 60_000);
});
