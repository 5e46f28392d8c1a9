import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LabDir, LabProvider } from '../../src/lab/provider.js';
import { e2eController, sharedImage, waitFor } from '../support/e2e.js';
import { freePort } from '../support/image-ssh.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { spawnSync } from 'node:child_process';
import { holdVmSlots } from '../support/hold-vm-slots.js';

const run = promisify(execFile);

/**
 * Tateru's flow on a real VM, driven by Debian's ansible-core: one uninspected lab VM is
 * booted into the installer by a playbook with its own one-time key, reached over SSH with the
 * installer's host key pinned (no StrictHostKeyChecking=no), has an OS written onto its disk
 * from the playbook (Plinth's e2e image, zstd-compressed, over HTTP into `dd`), leaves the installer for it, and
 * is then listed as deployed by the dynamic inventory and reached there by Ansible. The same VM
 * then goes into rescue: a file on its disk is read over SSH, and after exit-rescue its OS boots
 * unchanged. The lab VM sits behind QEMU's user network; its port 22 is forwarded to a host port,
 * which the controller serves as the installer's address. The first boot into the installer is
 * asked for the way Tateru's own client asks (test/fixtures/tateru/client-calls.py: Debian's
 * python3-requests on the `/v1` API, the API token as HTTP Basic password from ~/.netrc); the
 * playbook's `plinth.metal.installer` then finds the machine held with its key and changes nothing.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const GiB = 2 ** 30;
const ctx = { timeoutMs: 10_000, log: { debug() {}, info() {}, warn() {} } };
const NAME = 'flow-14';

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe('Ansible installs an OS through the installer, then rescue, on one lab VM', () => {
  let t: E2E;
  let lab: LabDir;
  let sshPort = 0;
  let imageServer: Server;
  let imagePort = 0;
  const work = mkdtempSync(join(tmpdir(), 'plinth-e2e-ansible-'));
  const marker = `plinth-flow-${randomBytes(8).toString('hex')}`;
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);

  const machine = async () => (await t.api('GET', `/api/v1/machines/${NAME}`)).json();
  const console_ = () => {
    try {
      return readFileSync(join(lab.runDir, `${NAME}.serial.log`), 'utf8').slice(-2500);
    } catch {
      return '(no console)';
    }
  };
  const until = (state: string, minutes: number) =>
    waitFor<any>(`${NAME} ${state}`, minutes * 60_000, async () => {
      const m = await machine();
      if (m.state.endsWith('-failed')) throw new Error(`${NAME} is ${m.state}: ${JSON.stringify(m.lastError)}\n${console_()}`);
      return m.state === state ? m : undefined;
    }, async () => `${NAME} is ${(await machine()).state}\n${console_()}`);

  const env = () => ({
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: work,
    ANSIBLE_COLLECTIONS_PATH: join(work, 'collections'),
    ANSIBLE_LOCAL_TEMP: join(work, 'tmp'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_HOST_KEY_CHECKING: 'true',
    ANSIBLE_INVENTORY_ENABLED: 'plinth.metal.plinth,host_list,yaml,ini',
    PLINTH_URL: t.url,
    PLINTH_TOKEN: t.adminToken,
  });
  async function ansible(command: string, args: string[], timeoutMs: number): Promise<string> {
    try {
      const { stdout } = await run(command, args, { env: env(), cwd: work, timeout: timeoutMs, maxBuffer: 16 * 2 ** 20 });
      return stdout;
    } catch (e) {
      const f = e as { stdout?: string; stderr?: string };
      throw new Error(`${command} ${args.join(' ')} failed:\n${(f.stdout ?? '').slice(-6000)}\n${(f.stderr ?? '').slice(-3000)}\n${console_()}`);
    }
  }
  /** SSH with a pinned host key (the known_hosts file given), never trusting on first use. */
  const ssh = (key: string, knownHosts: string, user: string, command: string) =>
    run('ssh', [
      '-i', key, '-p', String(sshPort),
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR',
      `${user}@127.0.0.1`, command,
    ], { env: { PATH: '/usr/bin:/bin', HOME: work }, timeout: 120_000 });

  beforeAll(async () => {
    ensureDebianPackages(['ansible-core'], () => hasCommand('ansible-playbook'));
    ensureDebianPackages(['python3-requests'], () => spawnSync('/usr/bin/python3', ['-c', 'import requests'], { stdio: 'ignore' }).status === 0);
    const { dir: imageDir, name: imageName } = await sharedImage();
    t = await e2eController({ providers: { timeout: '60s' } });
    t.controller.power.start();
    mkdirSync(join(work, 'collections', 'ansible_collections', 'plinth'), { recursive: true });
    mkdirSync(join(work, 'tmp'));
    symlinkSync(resolve('ansible'), join(work, 'collections', 'ansible_collections', 'plinth', 'metal'));

    // The image the playbook writes, compressed as the example in docs/ansible.md serves it
    // (zstd, in the installer), where the VM reaches the host (10.0.2.2). Made once per image.
    const raw = join(imageDir, `${imageName}.raw`);
    const imagePath = `${raw}.zst`;
    if (!existsSync(imagePath) || statSync(imagePath).mtimeMs < statSync(raw).mtimeMs) {
      await run('zstd', ['-1', '-T0', '-q', '-f', raw, '-o', `${imagePath}.part`]);
      renameSync(`${imagePath}.part`, imagePath);
    }
    const size = statSync(imagePath).size;
    imageServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': size });
      createReadStream(imagePath).pipe(res);
    });
    imagePort = await new Promise<number>((r) => imageServer.listen(0, '127.0.0.1', () => r((imageServer.address() as { port: number }).port)));

    lab = new LabDir(join(t.config.dataDir, 'lab'));
    sshPort = await freePort();
    lab.write({
      name: NAME,
      memoryMiB: 1024,
      smbios: { serial: 'FLOW-14-1', manufacturer: 'Plinth Labs', product: 'Ansible Target' },
      disks: [{ path: join(lab.dir, 'disks', `${NAME}.qcow2`), sizeBytes: 3 * GiB }],
      nics: [{ mac: '52:54:00:14:0a:01', bootUrl: t.bootUrl, hostForwards: [{ hostPort: sshPort, guestPort: 22 }] }],
      bootOrder: ['network', 'disk'],
    });
    expect((await t.api('POST', '/api/v1/appliances', { name: 'lab', type: 'qemu', address: lab.dir })).statusCode).toBe(201);
    const e = await t.api('POST', '/api/v1/appliances/lab/enlist', {});
    expect(e.statusCode, e.body).toBe(200);
    writeFileSync(join(work, 'plinth.yml'), [
      'plugin: plinth.metal.plinth',
      // The lab: the VM's SSH port is forwarded to this host port of 127.0.0.1.
      'compose:',
      "  ansible_host: \"'127.0.0.1'\"",
      `  ansible_port: ${sshPort}`,
      '',
    ].join('\n'));
  }, 30 * 60_000);

  afterAll(async () => {
    await t?.controller.close();
    if (lab) {
      const p = new LabProvider({ address: lab.dir });
      for (const n of lab.names()) await p.power.setPowerState(n, 'off', ctx).catch(() => undefined);
    }
    imageServer?.close();
    await t?.close();
  });

  it('a playbook boots the uninspected VM into the installer, writes the OS from the playbook and boots it; the inventory lists it deployed and Ansible reaches it', async () => {
    expect((await machine()).state).toBe('enrolled');
    // Tateru's client boots it into the installer through /v1, its credentials from ~/.netrc.
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'installer_key', '-f', join(work, 'installer_key')]);
    writeFileSync(join(work, '.netrc'), `machine 127.0.0.1 login ansible password ${t.adminToken}\n`, { mode: 0o600 });
    const tateru = await run('/usr/bin/python3', [resolve('test/fixtures/tateru/client-calls.py'), NAME, readFileSync(join(work, 'installer_key.pub'), 'utf8').trim()], {
      env: { PATH: '/usr/bin:/bin', HOME: work, TATERU_SVC: t.url, WAIT_SECONDS: String(30 * 60) },
      timeout: 35 * 60_000,
    }).then((r) => JSON.parse(r.stdout), (e: { stdout?: string; stderr?: string }) => {
      throw new Error(`Tateru's client calls failed: ${e.stdout ?? ''}${e.stderr ?? ''}\n${console_()}`);
    });
    expect(tateru.found).toEqual([expect.objectContaining({ name: NAME, uuid: expect.any(String) })]);
    expect(tateru.statuses.map((s: [string, number]) => s[0]).slice(0, 3)).toEqual(['find', 'get', 'boot-installer']);
    expect(tateru).toMatchObject({ managedBy: t.url, address: '127.0.0.1', port: sshPort });
    expect((await machine()).state).toBe('installer');
    console.log(`ansible-flow: Tateru's client saw the installer's address at ${seconds()} s`);
    const playbook = resolve('test/e2e/ansible-flow/install.yml');
    const out = await ansible('ansible-playbook', [playbook, '-e', JSON.stringify({ machine: NAME, work, marker, image_url: `http://10.0.2.2:${imagePort}/image.raw.zst` })], 40 * 60_000);
    expect(out).toMatch(/PLAY RECAP[\s\S]*installer\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    // Already held with the one-time key Tateru's client gave: the module boots nothing again.
    expect(out).toMatch(/TASK \[Boot into the installer[^\]]*\][^\n]*\nok: \[localhost\]/);
    console.log(`ansible-flow: installer held, OS written and deployed at ${seconds()} s`);
    const m = await machine();
    expect(m).toMatchObject({ state: 'deployed', currentRunId: null });

    // The dynamic inventory: deployed, with the OS's host key the playbook gave at exit.
    const inv = JSON.parse(await ansible('ansible-inventory', ['-i', 'plinth.yml', '--list'], 120_000));
    expect(inv.state_deployed.hosts).toEqual([NAME]);
    const hostvars = inv._meta.hostvars[NAME];
    const hostKey = readFileSync(join(work, 'os_host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    expect(hostvars.plinth_deployment.hostKeys).toEqual([hostKey]);
    // Ansible reaches the installed OS through the inventory, its host key pinned from the hostvars.
    writeFileSync(join(work, 'os_known_hosts'), `[127.0.0.1]:${sshPort} ${hostvars.plinth_deployment.hostKeys[0]}\n`);
    const ping = await ansible('ansible', [
      NAME, '-i', 'plinth.yml', '-u', 'ansible', '--private-key', join(work, 'os_key'),
      `--ssh-common-args=-o UserKnownHostsFile=${join(work, 'os_known_hosts')} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
      '-m', 'ansible.builtin.command', '-a', 'cat /etc/plinth-flow-marker',
    ], 15 * 60_000).catch(async () => {
      // The OS may still be in its first boot: wait for its SSH once, then ask again.
      await waitFor('installed OS SSH', 10 * 60_000, async () => (await ssh(join(work, 'os_key'), join(work, 'os_known_hosts'), 'ansible', 'true').then(() => true).catch(() => undefined)));
      return ansible('ansible', [
        NAME, '-i', 'plinth.yml', '-u', 'ansible', '--private-key', join(work, 'os_key'),
        `--ssh-common-args=-o UserKnownHostsFile=${join(work, 'os_known_hosts')} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
        '-m', 'ansible.builtin.command', '-a', 'cat /etc/plinth-flow-marker',
      ], 5 * 60_000);
    });
    expect(ping).toMatch(new RegExp(`${NAME} \\| CHANGED \\| rc=0 >>\\s+${marker}`));
    console.log(`ansible-flow: Ansible reached the installed OS at ${seconds()} s`);
  }, 50 * 60_000);

  it('rescue: the deployed VM boots the rescue system, a file on its disk is read over SSH, exit-rescue boots its OS unchanged', async () => {
    const bootId = (await ssh(join(work, 'os_key'), join(work, 'os_known_hosts'), 'ansible', 'cat /proc/sys/kernel/random/boot_id')).stdout.trim();
    const rescueKey = join(work, 'rescue_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rescue', '-f', rescueKey]);
    const r = await t.api('POST', `/api/v1/machines/${NAME}/actions/rescue`, { sshKeys: [readFileSync(`${rescueKey}.pub`, 'utf8').trim()], reason: 'read a file' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().run.params.returnTo).toBe('deployed');
    const access = await waitFor<any>('rescue SSH server', 20 * 60_000, async () => {
      const m = await machine();
      if (m.state.endsWith('-failed')) throw new Error(`${NAME} is ${m.state}: ${JSON.stringify(m.lastError)}\n${console_()}`);
      const a = (await t.api('GET', `/api/v1/machines/${NAME}/installer`)).json();
      return a.address ? a : undefined;
    });
    expect(access).toMatchObject({ kind: 'rescue', state: 'rescue', address: '127.0.0.1', port: sshPort, user: 'root' });
    writeFileSync(join(work, 'rescue_known_hosts'), `${access.knownHosts.join('\n')}\n`);
    // Read-only, journal not replayed: rescue looks, it does not write.
    const read = await ssh(rescueKey, join(work, 'rescue_known_hosts'), 'root', 'mount -o ro,noload /dev/vda3 /mnt && cat /mnt/etc/plinth-flow-marker; umount /mnt');
    expect(read.stdout.trim()).toBe(marker);
    console.log(`ansible-flow: file read in rescue at ${seconds()} s`);

    const out = await t.api('POST', `/api/v1/machines/${NAME}/actions/exit-rescue`, {});
    expect(out.statusCode, out.body).toBe(200);
    expect(out.json().machine.state).toBe('deployed');
    // Its OS boots again with the host key it had (pinned, not re-learned), and the file is there.
    const after = await waitFor('installed OS after rescue', 15 * 60_000, async () =>
      ssh(join(work, 'os_key'), join(work, 'os_known_hosts'), 'ansible', 'cat /proc/sys/kernel/random/boot_id /etc/plinth-flow-marker').then((x) => x.stdout.trim().split('\n')).catch(() => undefined),
    );
    expect(after[0]).not.toBe(bootId);
    expect(after[1]).toBe(marker);
    console.log(`ansible-flow: installed OS back after rescue at ${seconds()} s`);
  }, 40 * 60_000);
});
