import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { installerIsoDir } from '../../src/installer/index.js';
import { askForTicket } from '../../src/agent/ticket.js';

/**
 * Booting the installer from virtual media, controller side: the ISO it serves (a real
 * grub-mkrescue build around the installer files, BIOS and UEFI), and the ticket an ISO-booted
 * agent asks for by its identity (the agent's own client against the listening controller).
 */
type TC = Awaited<ReturnType<typeof freshController>>;

describe.each(backends)('installer ISO and agent tickets on $name', (backend) => {
  let t: TC;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-iso-'));
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(200_000));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(500_000));
  let installerBuilt = true;
  beforeAll(async () => {
    t = await freshController(
      backend,
      { publicUrl: 'http://10.0.2.2:7709', installerKernelArgs: "console=ttyS0,115200n8 quiet it's" },
      { installer: () => (installerBuilt ? { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') } : null) },
    );
    url = await t.controller.listen();
  });
  afterAll(async () => t?.close());

  const identity = (o: { uuid: string; serial: string; mac: string }) =>
    new URLSearchParams({ uuid: o.uuid, serial: o.serial, manufacturer: 'QEMU', mac0: o.mac, platform: 'vmedia' });
  const said: string[] = [];
  const ask = (q: URLSearchParams, giveUpAfterMs = 60_000) => askForTicket({ url, query: q, debug: false, console: (l) => said.push(l), giveUpAfterMs });

  it('serves the installer as an ISO that boots BIOS and UEFI with the controller URL and no ticket on its command line', async () => {
    const r = await fetch(`${url}/boot/installer.iso`);
    expect(r.status, r.status === 200 ? '' : await r.text()).toBe(200);
    const iso = join(dir, 'got.iso');
    writeFileSync(iso, Buffer.from(await r.arrayBuffer()));
    const report = execFileSync('xorriso', ['-indev', iso, '-report_el_torito', 'plain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(report).toMatch(/El Torito boot img :\s+1\s+BIOS/);
    expect(report).toMatch(/El Torito boot img :\s+2\s+UEFI/);
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/boot/grub/grub.cfg', join(dir, 'grub.cfg'), '-extract', '/plinth/vmlinuz', join(dir, 'vmlinuz.out')], { stdio: 'ignore' });
    const cfg = readFileSync(join(dir, 'grub.cfg'), 'utf8');
    expect(cfg).toContain("linux /plinth/vmlinuz 'plinth.url=http://10.0.2.2:7709' 'plinth.boot=vmedia' 'console=ttyS0,115200n8' 'quiet' 'it'\\''s'");
    expect(cfg).not.toMatch(/plinth\.(run|token)/);
    expect(readFileSync(join(dir, 'vmlinuz.out')).equals(readFileSync(join(dir, 'vmlinuz')))).toBe(true);
    // Built once: the second request is the same file.
    const again = await fetch(`${url}/boot/installer.iso`, { method: 'HEAD' });
    expect(again.status).toBe(200);
    expect(readdirSync(installerIsoDir(t.config.dataDir)).filter((f) => f.endsWith('.iso'))).toHaveLength(1);
  }, 120_000);

  it('says the installer is not built instead of serving an ISO', async () => {
    installerBuilt = false;
    try {
      const r = await fetch(`${url}/boot/installer.iso`);
      expect(r.status).toBe(404);
      expect(await r.text()).toContain('plinth installer build');
    } finally {
      installerBuilt = true;
    }
  });

  it('gives an ISO-booted agent its run ticket by identity, once: an unknown machine is enrolled and inspected', async () => {
    const q = identity({ uuid: '5e5e5e5e-0000-4000-8000-000000000001', serial: 'ISO-1', mac: '52:54:00:5e:00:01' });
    const config = await ask(q);
    expect(config).toMatchObject({ url, debug: false, runId: expect.any(String), token: expect.any(String) });
    const machines = (await t.api('GET', '/api/v1/machines')).json().items;
    const m = machines.find((x: { identity: { serial: string } }) => x.identity.serial === 'ISO-1');
    expect(m).toMatchObject({ state: 'inspecting', currentRunId: config!.runId });
    // The ticket is a run ticket like a network boot's: the agent's hello claims the run with it.
    const hello = await fetch(`${url}/agent/v1/hello`, { method: 'POST', headers: { authorization: `Bearer ${config!.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ agentVersion: 'test' }) });
    expect(hello.status).toBe(200);
    expect((await t.api('GET', `/api/v1/machines/${m.name}`)).json().state).toBe('inspect-wait');
    // Claimed: a second ask (another ISO boot with the same identity) gets no ticket and is told to wait.
    said.length = 0;
    expect(await ask(q, 0)).toBeNull();
    expect(said.join('\n')).toMatch(/waiting: run \S+ of machine \S+ is held by another installer/);
    const trace = (await t.api('GET', `/api/v1/machines/${m.name}/trace`)).json();
    expect(JSON.stringify(trace)).toContain('agent-ticket');
  });

  it('tells an ISO-booted machine with nothing to run so, and refuses a malformed request naming the field', async () => {
    const q = identity({ uuid: '5e5e5e5e-0000-4000-8000-000000000002', serial: 'ISO-2', mac: '52:54:00:5e:00:02' });
    const created = await t.api('POST', '/api/v1/machines', { name: 'iso-idle', maintenance: true, identity: { systemUuid: '5e5e5e5e-0000-4000-8000-000000000002' } });
    expect(created.statusCode, created.body).toBe(201);
    said.length = 0;
    expect(await ask(q)).toBeNull();
    expect(said.join('\n')).toContain('nothing to run: machine iso-idle has nothing to run: it is enrolled');
    const bad = await fetch(`${url}/boot/agent-ticket?uuid=x&shell=1`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('shell');
  });
});

describe.each(backends)("a machine's own ISO, its fixed boot address on it, on $name", (backend) => {
  let t: TC;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-iso-static-'));
  // The installer's files are symlinks here (as a test's shared installer is): the ISO must carry the files.
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'vmlinuz'), randomBytes(200_000));
  writeFileSync(join(dir, 'real', 'initrd.img'), randomBytes(500_000));
  symlinkSync(join(dir, 'real', 'vmlinuz'), join(dir, 'vmlinuz'));
  symlinkSync(join(dir, 'real', 'initrd.img'), join(dir, 'initrd.img'));
  beforeAll(async () => {
    t = await freshController(
      backend,
      { publicUrl: 'http://10.78.0.3:7709', installerKernelArgs: 'console=ttyS0', vmedia: { network: '10.78.0.0/24', gateway: '10.78.0.254', dns: '10.78.0.53' } },
      { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) },
    );
    url = await t.controller.listen();
  });
  afterAll(async () => t?.close());

  const grubCfg = async (path: string) => {
    const r = await fetch(`${url}${path}`);
    expect(r.status, r.status === 200 ? '' : await r.text()).toBe(200);
    const iso = join(dir, 'got.iso');
    writeFileSync(iso, Buffer.from(await r.arrayBuffer()));
    rmSync(join(dir, 'initrd.out'), { force: true });
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/boot/grub/grub.cfg', join(dir, 'grub.cfg'), '-extract', '/plinth/initrd.img', join(dir, 'initrd.out')], { stdio: 'ignore' });
    expect(lstatSync(join(dir, 'initrd.out')).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, 'initrd.out')).equals(readFileSync(join(dir, 'real', 'initrd.img')))).toBe(true);
    return readFileSync(join(dir, 'grub.cfg'), 'utf8');
  };

  it('takes the boot address at creation, and builds the ISO with ip= and BOOTIF= for that machine alone', async () => {
    const created = await t.api('POST', '/api/v1/machines', { name: 'vm-static', identity: { macs: ['52:54:00:e2:10:44'] }, bootAddress: '10.78.0.44' });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().bootAddress).toBe('10.78.0.44');
    const id = created.json().id as string;
    const cfg = await grubCfg(`/boot/installer.iso?machine=${id}`);
    expect(cfg).toContain("linux /plinth/vmlinuz 'plinth.url=http://10.78.0.3:7709' 'plinth.boot=vmedia' 'console=ttyS0' 'ip=10.78.0.44::10.78.0.254:255.255.255.0:::off:10.78.0.53:' 'BOOTIF=01-52-54-00-e2-10-44'");
    const machines = join(installerIsoDir(t.config.dataDir), 'machines');
    expect(readdirSync(join(machines, id)).filter((f) => f.endsWith('.iso'))).toHaveLength(1);
    // The common ISO carries no address.
    expect(await grubCfg('/boot/installer.iso')).not.toContain('ip=');
    // A machine without a boot address gets the common ISO; an unknown id, or a name, nothing.
    const plain = await t.api('POST', '/api/v1/machines', { name: 'vm-dhcp' });
    expect(await grubCfg(`/boot/installer.iso?machine=${plain.json().id}`)).not.toContain('ip=');
    expect((await fetch(`${url}/boot/installer.iso?machine=vm-static`)).status).toBe(404);
    expect((await fetch(`${url}/boot/installer.iso?machine=nope`)).status).toBe(404);
    expect((await fetch(`${url}/boot/installer.iso?machine=a/../b`)).status).toBe(400);
  }, 120_000);

  it('refuses a boot address outside vmedia.network or an IPv6 one with a 400 naming bootAddress, creating nothing', async () => {
    for (const [address, why] of [
      ['10.79.0.5', /^bootAddress: 10\.79\.0\.5 is not in the provisioning subnet 10\.78\.0\.0\/24 \(vmedia\.network\)/],
      ['fd78::44', /^bootAddress: fd78::44 is an IPv6 address: fixed boot addresses are IPv4/],
      ['10.78.0.3', /^bootAddress: 10\.78\.0\.3 is the controller's own address/],
      ['10.78.0.44', /bootAddress/],
    ] as const) {
      const r = await t.api('POST', '/api/v1/machines', { name: 'vm-bad', bootAddress: address });
      expect(r.statusCode, `${address}: ${r.body}`).toBe(address === '10.78.0.44' ? 409 : 400);
      expect(r.json().error.message, address).toMatch(why);
      expect(r.json().error.details.field).toBe('bootAddress');
    }
    expect((await t.api('GET', '/api/v1/machines/vm-bad')).statusCode).toBe(404);
  });
});
