import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli as cli } from '../support/cli.js';
import { bladeFacts, bootAndReport, injectHttp } from './matching-support.js';

type TC = Awaited<ReturnType<typeof freshController>>;

// The real eDeploy configuration and hardware lists (see /work/shared/fixtures/README.md).
const F = '/work/shared/fixtures';
const KVM_HW = `${F}/edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw`;

describe('matching commands that need no controller', () => {
  const run = cli({ PLINTH_URL: 'http://127.0.0.1:9', PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });

  it('spec match: prints {matched, vars} and exits 0 on a match, 1 otherwise, 2 on a malformed file', async () => {
    const yes = await run('spec', 'match', `${F}/edeploy-config/kvm-test.specs`, KVM_HW);
    expect(yes.code, yes.stderr).toBe(0);
    expect(JSON.parse(yes.stdout)).toEqual({
      matched: true,
      vars: { disk: 'vda', eth: 'eth0', mac: '52:54:12:34:00:01', 'eth-io': 'eth1', 'mac-io': '52:54:12:34:00:02', 'eth-mgmt': 'eth2', 'mac-mgmt': '52:54:12:34:00:03', 'ipmi-fake-channel': '0' },
    });
    const no = await run('spec', 'match', `${F}/edeploy-config/hp.specs`, KVM_HW);
    expect(no.code).toBe(1);
    expect(no.stdout).toBe('{"matched":false,"vars":{}}\n');
    const bad = await run('spec', 'match', `${F}/edeploy-config/hp-mlx.specs`, KVM_HW);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(new RegExp(`^${F}/edeploy-config/hp-mlx\\.specs:\\d+:\\d+: `));
    expect((await run('spec', 'match', '/nonexistent.specs', KVM_HW)).code).toBe(2);
  });

  it('pool expand: prints the entries of a generate model as a JSON array', async () => {
    const r = await run('pool', 'expand', `${F}/edeploy-config/kvm-test.cmdb`);
    expect(r.code, r.stderr).toBe(0);
    const entries = JSON.parse(r.stdout);
    expect(entries.map((e: any) => [e.hostname, e.ip, e['ip-mgmt']])).toEqual([
      ['kvm1', '10.0.2.3', '192.168.1.1'],
      ['kvm2', '10.0.2.4', '192.168.1.2'],
      ['kvm3', '10.0.2.5', '192.168.1.3'],
    ]);
  });

  it("edeploy resolve: eDeploy's server on a CONFIGDIR, and --failure gives the quota back", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-edeploy-'));
    cpSync(`${F}/edeploy-config`, dir, { recursive: true });
    writeFileSync(join(dir, 'state'), "[('hp', 0), ('kvm-test', 2)]\n");
    const r = await run('edeploy', 'resolve', '--config-dir', dir, KVM_HW);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile).toBe('kvm-test');
    expect(out.vars).toMatchObject({ hostname: 'kvm1', ip: '10.0.2.3', mac: '52:54:12:34:00:01', used: 1 });
    expect(readFileSync(join(dir, 'state'), 'utf8')).toBe("[('hp', 0), ('kvm-test', 1)]\n");
    const fail = await run('edeploy', 'resolve', '--config-dir', dir, '--failure', 'kvm-test');
    expect(fail.code).toBe(0);
    expect(JSON.parse(fail.stdout)).toEqual({ profile: 'kvm-test', changed: true, count: 2 });
    writeFileSync(join(dir, 'state'), "[('hp', 0), ('kvm-test', 0)]\n");
    const none = await run('edeploy', 'resolve', '--config-dir', dir, KVM_HW);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`No more role available in ${join(dir, 'state')}\n`);
    expect((await run('edeploy', 'resolve', '--config-dir', dir)).code).toBe(2);
  });
});

describe('profile and pool commands against a running controller', () => {
  let t: TC;
  let run: ReturnType<typeof cli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-matching-cli-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  beforeAll(async () => {
    t = await freshController(sqliteBackend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    const url = await t.controller.listen();
    run = cli({ PLINTH_URL: url, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  });
  afterAll(async () => t?.close());

  it('edeploy import: state, specs and CMDBs become profiles in order, quotas and pools, unchanged', async () => {
    const config = join(dir, 'configdir');
    cpSync(`${F}/edeploy-config`, config, { recursive: true });
    writeFileSync(join(config, 'state'), "[('hp', 4), ('vm', '*'), ('vm-centos', '1'), ('kvm-test', 2), ('ghost', 1)]\n");
    const r = await run('edeploy', 'import', config);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'pool hp: created (10 entries)',
      'pool vm-centos: created (49 entries)',
      'pool kvm-test: created (3 entries)',
      'profile hp: created (position 10)',
      'profile vm: created (position 20)',
      'profile vm-centos: created (position 30)',
      'profile kvm-test: created (position 40)',
    ]);
    expect(r.stderr).toContain('note: ghost: no ghost.specs, not imported (eDeploy never matches such a profile)');
    expect(r.stderr).toContain('note: kvm-test: kvm-test.configure not imported');
    const profiles = JSON.parse((await run('profile', 'list', '--json')).stdout);
    expect(profiles.map((p: any) => [p.name, p.quota, p.pool])).toEqual([
      ['hp', 4, 'hp'],
      ['vm', null, null],
      ['vm-centos', 1, 'vm-centos'],
      ['kvm-test', 2, 'kvm-test'],
    ]);
    expect(profiles[3].specText).toBe(readFileSync(join(config, 'kvm-test.specs'), 'utf8'));
    const pool = JSON.parse((await run('pool', 'show', 'kvm-test', '--json')).stdout);
    expect(pool.model).toMatchObject({ hostname: 'kvm1-3', ip: '10.0.2.3-253' });
    expect(pool.items.map((e: any) => e.data.hostname)).toEqual(['kvm1', 'kvm2', 'kvm3']);
    // Importing again changes nothing.
    const again = await run('edeploy', 'import', config, '--json');
    expect(JSON.parse(again.stdout).profiles.every((p: any) => p.outcome === 'unchanged')).toBe(true);

    // The eDeploy test VM, simulated from its .hw file, gets kvm-test and kvm1.
    const hwDir = join(dir, 'hw');
    mkdirSync(hwDir);
    cpSync(KVM_HW, join(hwDir, 'kvm-vm.hw'));
    const sim = await run('profile', 'simulate', '--hw-dir', hwDir);
    expect(sim.code, sim.stderr).toBe(0);
    expect(sim.stdout.split('\n')[1]).toBe('kvm-vm kvm-test kvm-test[0] kvm1 -');
    expect(sim.stdout).toContain('profile kvm-test: 2 left → 1');
    expect(JSON.parse((await run('profile', 'show', 'kvm-test', '--json')).stdout).remaining).toBe(2);

    const broken = join(dir, 'broken');
    cpSync(config, broken, { recursive: true });
    writeFileSync(join(broken, 'state'), "[('hp-mlx', 1)]\n");
    const bad = await run('edeploy', 'import', broken);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(new RegExp(`^plinth: ${broken}/hp-mlx\\.specs:\\d+:\\d+: `));
  });

  it("edeploy import --pxe-cmdline: the | … | arguments eDeploy kept for the installed system become deploy.kernelArgs", async () => {
    const config = join(dir, 'configdir');
    const r = await run('edeploy', 'import', config, '--dry-run', '--pxe-cmdline', 'initrd=initrd.pxe SERV=10.0.0.1 ONSUCCESS=kexec | console=tty0 console=ttyS0,115200n8 |');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).profiles.map((p: any) => p.deploy)).toEqual(Array(4).fill({ kernelArgs: 'console=tty0 console=ttyS0,115200n8' }));
    const bad = await run('edeploy', 'import', config, '--dry-run', '--pxe-cmdline', 'a | x=`reboot` |');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^plinth: pxeCmdline: .*\n$/);
  });

  it('profile apply: YAML in, errors point at the file line, nothing half-written', async () => {
    const yaml = join(dir, 'profiles.yaml');
    writeFileSync(
      yaml,
      [
        'pools:',
        '  - name: racks',
        '    generate: { hostname: "rack01-04", ip: "10.1.0.10-13" }',
        'profiles:',
        '  - name: blade',
        '    position: 1',
        '    quota: 2',
        '    pool: racks',
        '    spec:',
        '      - [system, product, vendor, HP]',
        '      - [system, product, serial, $serial]',
        '    deploy:',
        '      image: debian-12',
        '      imagee: typo',
        '',
      ].join('\n'),
    );
    const before = (await t.api('GET', '/api/v1/profiles')).body;
    const r = await run('profile', 'apply', '-f', yaml);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`plinth: ${yaml}:14:7: profiles[0].deploy.imagee: is not a known field\n`);
    expect((await t.api('GET', '/api/v1/profiles')).body).toBe(before);
    expect((await t.api('GET', '/api/v1/pools/racks')).statusCode).toBe(404);

    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('      imagee: typo\n', ''));
    const ok = await run('profile', 'apply', '-f', yaml);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('pool racks: created (4 entries)\nprofile blade: created (position 1)\n');

    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'name: x\nspec: [\n');
    const syntax = await run('profile', 'apply', '-f', broken);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(new RegExp(`^plinth: ${broken}:\\d+:\\d+: `));

    const single = join(dir, 'single.yaml');
    writeFileSync(single, 'name: small\nposition: 5\nquota: unlimited\nspec:\n  - [system, product, vendor, "regexp(^H)"]\n  - [cpu, logical, number, "ge(zero)"]\n');
    expect((await run('profile', 'apply', '-f', single)).code).toBe(0);
    const list = await run('profile', 'list');
    expect(list.stdout.split('\n').slice(0, 4)).toEqual(['position name quota pool rules image', '1 blade 2 of 2 left racks 2 debian-12', '5 small unlimited (0 held) - 2 -', '10 hp 4 of 4 left hp 29 -']);
  });

  it('profile explain and show, pool list, show and delete, profile delete', async () => {
    await bootAndReport(injectHttp(t.controller.app), bladeFacts(1));
    const m = (await t.api('GET', '/api/v1/machines?q=CZ00000001')).json().items[0];
    expect(m.match).toMatchObject({ profile: 'blade', vars: { hostname: 'rack01' } });
    const ex = await run('profile', 'explain', m.name);
    expect(ex.code, ex.stderr).toBe(0);
    const lines = ex.stdout.split('\n');
    expect(lines[0]).toBe(`Machine ${m.name}: has profile blade`);
    expect(lines[1]).toBe('Inspected now, it would match: blade (if its pool has an entry for it)');
    expect(lines.slice(2, 4)).toEqual(['+ blade (position 1, 1 left)', '    matched: serial=CZ00000001']);
    expect(lines[4]).toBe('- small (position 5)');
    expect(lines[5]).toMatch(/^ {4}no match: rule 2 \('cpu', 'logical', 'number', 'ge\(zero\)'\) matches no hardware line\.$/);
    expect(ex.stdout).toContain("ge(zero) cannot be applied to '32'");
    // The imported eDeploy profile vm matches this blade too, but comes later.
    expect(ex.stdout).toMatch(/^\+ vm \(position 20\)\n {4}matched: /m);

    const show = await run('profile', 'show', 'kvm-test');
    expect(show.stdout).toMatch(/^Quota: {7}2 of 2 left$/m);
    expect(show.stdout).toMatch(/^ +\('system', 'product', 'vendor', 'kvm'\),$/m);

    const pools = await run('pool', 'list');
    expect(pools.stdout).toContain('racks 4 3 1 blade generate');
    const racks = await run('pool', 'show', 'racks');
    expect(racks.stdout.split('\n')[0]).toBe('Pool racks: 4 entries, 3 free, 1 held; used by blade');
    expect(racks.stdout).toContain(`0 ${m.name} {"serial":"CZ00000001","hostname":"rack01","ip":"10.1.0.10","used":1}`);

    const refused = await run('profile', 'delete', 'blade');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`plinth: profile blade is the profile of machine(s) ${m.name}; delete with force to detach them\n`);
    expect((await run('profile', 'delete', 'blade', '--force')).code).toBe(0);
    expect((await run('pool', 'delete', 'racks')).stderr).toBe('plinth: 1 entry of pool racks is held by a machine; delete with force to take it back\n');
    expect((await run('pool', 'delete', 'racks', '--force')).stdout).toBe('deleted pool racks\n');
  });
});
