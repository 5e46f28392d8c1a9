import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { backends } from '../support/backends.js';
import { freshController, snapshot, type InjectOptions } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { inProcessCli } from '../support/cli.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * What a deploy is told beyond its image, through the API as an operator sets it: the
 * installer settings (`os.*`) and kernel arguments of a profile and of a deploy request, a
 * template selected under a name of its own, and cloud-config snippets that both set a key.
 * Real app, real database, real templates; only the machine is simulated.
 */
describe.each(backends)('deploy settings on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-07-01T10:00:00.000Z');
  const image = randomBytes(2 ** 20);
  const dir = mkdtempSync(join(tmpdir(), 'plinth-settings-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { clock, installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    const up = await inject('POST', `/api/v1/images?name=tiny&sha256=${sha(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
  });
  afterAll(async () => t?.close());

  const inject = (method: string, url: string, opts: InjectOptions = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const tokenFor = async (mac: string) => /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body)![1]!;
  const artifact = async (runId: string, name: string) => {
    const r = await t.api('GET', `/api/v1/runs/${runId}/artifacts/${encodeURIComponent(name)}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.body;
  };

  /** A machine that network-booted and was inspected (and so matched whatever profile there is), named `name`. */
  async function inspected(name: string, mac: string) {
    const token = await tokenFor(mac);
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] }) });
    expect(r.statusCode, r.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
  }

  async function deploy(name: string, body: Record<string, unknown>) {
    const r = await t.api('POST', `/api/v1/machines/${name}/actions/deploy`, body);
    expect(r.statusCode, r.body).toBe(200);
    const { machine, run } = r.json();
    expect(machine.lastError, JSON.stringify(machine.lastError)).toBeNull();
    expect(machine.state).toBe('deploying');
    return run.id as string;
  }

  it('kickstart and autoinstall deploys prepare out of the box, from public mirrors', async () => {
    await inspected('plain-ks', '52:54:00:5a:00:01');
    const ks = await deploy('plain-ks', { method: 'kickstart' });
    expect(await artifact(ks, 'ipxe/anaconda')).toContain('inst.repo=https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Everything/x86_64/os ');
    await inspected('plain-ai', '52:54:00:5a:00:02');
    const ai = await deploy('plain-ai', { method: 'autoinstall' });
    expect(await artifact(ai, 'ipxe/ubuntu-autoinstall')).toContain('url=https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso autoinstall');
  });

  it('takes os.* settings and kernelArgs from the profile, each overridden by the deploy request', async () => {
    const profile = await t.api('POST', '/api/v1/profiles/apply', {
      profiles: [
        {
          name: 'fedora-fr',
          spec: [],
          deploy: {
            method: 'kickstart',
            kernelArgs: 'intel_iommu=on',
            os: { mirror: 'http://mirror.example.com/fedora/41/os', timezone: 'Europe/Paris', locale: 'fr_FR.UTF-8', packages: ['htop'] },
          },
        },
      ],
    });
    expect(profile.statusCode, profile.body).toBe(200);
    await inspected('fr-1', '52:54:00:5a:00:03');
    const fromProfile = await artifact(await deploy('fr-1', {}), 'kickstart/ks.cfg');
    expect(fromProfile).toContain('timezone Europe/Paris --utc\n');
    expect(fromProfile).toContain('lang fr_FR.UTF-8\n');
    expect(fromProfile).toContain('url --url=http://mirror.example.com/fedora/41/os\n');
    expect(fromProfile).toMatch(/^htop$/m);
    expect(fromProfile).toContain("bootloader --append='console=tty0 console=ttyS0,115200n8 intel_iommu=on'\n");

    await inspected('fr-2', '52:54:00:5a:00:04');
    const run = await deploy('fr-2', { os: { timezone: 'America/New_York', packages: ['vim-enhanced'] }, kernelArgs: 'nomodeset' });
    const fromRequest = await artifact(run, 'kickstart/ks.cfg');
    expect(fromRequest).toContain('timezone America/New_York --utc\n');
    expect(fromRequest).toContain('lang fr_FR.UTF-8\n');
    expect(fromRequest).toMatch(/^vim-enhanced$/m);
    expect(fromRequest).not.toMatch(/^htop$/m);
    expect(fromRequest).toContain("bootloader --append='console=tty0 console=ttyS0,115200n8 nomodeset'\n");
    expect(await artifact(run, 'ipxe/anaconda')).toContain('inst.repo=http://mirror.example.com/fedora/41/os ');
  });

  it('refuses a bad setting when it is given, naming the field, and changes nothing', async () => {
    const before = await snapshot(t.controller);
    for (const [body, field] of [
      [{ os: { timezone: 'Europe/Paris; reboot' } }, 'os.timezone'],
      [{ os: { mirror: 'ftp://mirror.example.com/debian' } }, 'os.mirror'],
      [{ os: { packages: ['vim', '-rf'] } }, 'os.packages'],
      [{ os: { colour: 'blue' } }, 'os.colour'],
      [{ kernelArgs: 'quiet; reboot' }, 'kernelArgs'],
      [{ template: '../ks.cfg' }, 'template'],
    ] as const) {
      const r = await t.api('POST', '/api/v1/machines/fr-1/actions/redeploy', body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toContain(field);
    }
    const profile = await t.api('POST', '/api/v1/profiles/apply', { profiles: [{ name: 'bad-os', spec: [], deploy: { os: { isoUrl: 'file:///srv/ubuntu.iso' } } }] });
    expect(profile.statusCode, profile.body).toBe(400);
    expect(profile.json().error.message).toContain('deploy.os.isoUrl');
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('hands kernelArgs to the agent for image deploys: the request’s, else the profile’s', async () => {
    await inspected('img-1', '52:54:00:5a:00:05');
    await deploy('img-1', { method: 'image', image: 'tiny' });
    const hello = await inject('POST', '/agent/v1/hello', { token: await tokenFor('52:54:00:5a:00:05'), body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    expect(hello.json().run.params.kernelArgs).toBe('intel_iommu=on');

    await inspected('img-2', '52:54:00:5a:00:06');
    await deploy('img-2', { method: 'image', image: 'tiny', kernelArgs: 'nomodeset  console=ttyS1' });
    const second = await inject('POST', '/agent/v1/hello', { token: await tokenFor('52:54:00:5a:00:06'), body: { agentVersion: 't' } });
    expect(second.json().run.params.kernelArgs).toBe('nomodeset  console=ttyS1');
  });

  it('serves a template an override added under a new name, when a deploy or its profile selects it', async () => {
    const put = await t.api('PUT', '/api/v1/templates/kickstart/rhel9.cfg?scope=site', { body: '# rhel9 kickstart for {{ hostname }}\ntimezone {{ os.timezone }} --utc\n' });
    expect(put.statusCode, put.body).toBe(200);
    await inspected('rhel-1', '52:54:00:5a:00:07');
    const preview = await t.api('POST', '/api/v1/templates/kickstart/render', { machine: 'rhel-1', name: 'rhel9.cfg' });
    expect(preview.statusCode, preview.body).toBe(200);
    expect(preview.json().artifacts['rhel9.cfg']).toBe('# rhel9 kickstart for rhel-1\ntimezone Europe/Paris --utc\n');

    const run = await deploy('rhel-1', { template: 'rhel9.cfg' });
    const script = (await inject('GET', '/boot/machine.ipxe?mac=52:54:00:5a:00:07')).body;
    const ksUrl = /inst\.ks=(\S+)/.exec(script)![1]!;
    expect(ksUrl).toMatch(/\/kickstart\/ks\.cfg$/);
    const served = await inject('GET', new URL(ksUrl).pathname);
    expect(served.statusCode).toBe(200);
    expect(served.body).toBe('# rhel9 kickstart for rhel-1\ntimezone Europe/Paris --utc\n');
    expect(served.headers['content-type']).toBe((await t.api('GET', `/api/v1/runs/${run}/artifacts`)).json().items.find((a: { name: string }) => a.name === 'kickstart/ks.cfg').contentType);

    // A profile selects it the same way; the request's choice would win over the profile's.
    const rhel = await t.api('POST', '/api/v1/profiles/apply', {
      profiles: [{ name: 'rhel', position: 1, spec: [['system', 'product', 'serial', 'SER-rhel-3']], deploy: { method: 'kickstart', template: 'rhel9.cfg' } }],
    });
    expect(rhel.statusCode, rhel.body).toBe(200);
    await inspected('rhel-3', '52:54:00:5a:00:0b');
    expect((await t.api('POST', '/api/v1/templates/kickstart/render', { machine: 'rhel-3' })).json().artifacts).toEqual({ 'ks.cfg': '# rhel9 kickstart for rhel-3\ntimezone Etc/UTC --utc\n' });
    expect(await artifact(await deploy('rhel-3', {}), 'kickstart/ks.cfg')).toBe('# rhel9 kickstart for rhel-3\ntimezone Etc/UTC --utc\n');

    // A name nobody defined fails the deploy at prepare, naming the field.
    await inspected('rhel-2', '52:54:00:5a:00:08');
    const missing = (await t.api('POST', '/api/v1/machines/rhel-2/actions/deploy', { template: 'rhel8.cfg' })).json();
    expect(missing.machine.state).toBe('deploy-failed');
    expect(missing.machine.lastError).toMatchObject({ code: 'template', stage: 'prepare' });
    expect(missing.machine.lastError.message).toMatch(/^template: no kickstart template named 'rhel8.cfg'/);
  });

  it('merges a cloud-config snippet override that adds runcmd: with the built-in one, instead of losing one', async () => {
    const put = await t.api('PUT', '/api/v1/templates/cloud-init/packages?scope=site', { body: 'packages: [htop]\nruncmd:\n  - [touch, /etc/site-was-here]\n' });
    expect(put.statusCode, put.body).toBe(200);
    await inspected('merge-1', '52:54:00:5a:00:09');
    const run = await deploy('merge-1', { method: 'image', image: 'tiny' });
    const userData = await artifact(run, 'cloud-init/user-data');
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    expect(userData.match(/^runcmd:/gm)).toHaveLength(1);
    expect((parseYaml(userData) as { runcmd: unknown[] }).runcmd).toEqual([['touch', '/etc/site-was-here'], ['/var/lib/plinth/report-first-boot']]);
    expect((await t.api('DELETE', '/api/v1/templates/cloud-init/packages?scope=site')).statusCode).toBe(204);
  });

  it('plinth machine deploy sets them with --os-* flags, --kernel-args and --template; a bad value is one line and exit 1', async () => {
    const cli = inProcessCli({ PLINTH_URL: await t.controller.listen(), PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    await inspected('cli-ks', '52:54:00:5a:00:0a');
    const bad = await cli('machine', 'deploy', 'cli-ks', '--os-timezone', 'Europe/Paris;reboot');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^plinth: .*os\.timezone.*\n$/);
    const r = await cli('machine', 'deploy', 'cli-ks', '--method', 'kickstart', '--os-timezone', 'Europe/Berlin', '--os-package', 'tmux', '--os-package', 'git', '--kernel-args', 'nomodeset', '--json');
    expect(r.code, r.stderr).toBe(0);
    const ks = await artifact(JSON.parse(r.stdout).run.id, 'kickstart/ks.cfg');
    expect(ks).toContain('timezone Europe/Berlin --utc\n');
    expect(ks).toMatch(/^tmux\ngit$/m);
    expect(ks).toContain("bootloader --append='console=tty0 console=ttyS0,115200n8 nomodeset'\n");
  });
});
