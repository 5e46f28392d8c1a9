import { chmod, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { edeployResolveCommand, poolExpandCommand, specMatchCommand } from './commands.js';

const F = '/work/shared/fixtures';
const CONFIG = `${F}/edeploy-config`;
const KVM = `${F}/edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw`;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plinth-commands-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const kvmVars = {
  disk: 'vda',
  eth: 'eth0',
  mac: '52:54:12:34:00:01',
  'eth-io': 'eth1',
  'mac-io': '52:54:12:34:00:02',
  'eth-mgmt': 'eth2',
  'mac-mgmt': '52:54:12:34:00:03',
  'ipmi-fake-channel': '0',
};

describe('specMatchCommand', () => {
  it('prints the match and its variables, exit 0', async () => {
    const r = await specMatchCommand(`${CONFIG}/kvm-test.specs`, KVM);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.stdout)).toEqual({ matched: true, vars: kvmVars });
  });

  it('reads the JSON forms too', async () => {
    const r = await specMatchCommand(`${CONFIG}/kvm-test.specs.json`, `${KVM}.json`);
    expect(JSON.parse(r.stdout)).toEqual({ matched: true, vars: kvmVars });
  });

  it('gives $$ variables by bare name', async () => {
    const specs = join(dir, 'tag.specs');
    await writeFile(specs, "[('system', 'product', 'vendor', '$$tag'), ('disk', '$disk', 'size', '$$size=gt(1)')]\n");
    const r = await specMatchCommand(specs, KVM);
    expect(JSON.parse(r.stdout)).toEqual({ matched: true, vars: { tag: 'kvm', disk: 'vda', size: '4' } });
  });

  it('prints a non-match, exit 1', async () => {
    const r = await specMatchCommand(`${CONFIG}/hp.specs`, KVM);
    expect(r).toEqual({ exitCode: 1, stdout: '{"matched":false,"vars":{}}\n', stderr: '' });
  });

  it.each(['hp-mlx.specs', 'hp-mlx-ctrl.specs'])('exits 2 on the malformed %s, one line naming file, line and column', async (name) => {
    const r = await specMatchCommand(`${CONFIG}/${name}`, KVM);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${CONFIG}/${name}:22:5: expected ',' or ']' after a list item, found '(' (missing comma?)\n`);
  });

  it('exits 2 on a malformed hardware list and on a missing file', async () => {
    const hw = join(dir, 'bad.hw.json');
    await writeFile(hw, '[["disk", "sda", "size", "1"],\n ["disk" "sdb"]]');
    const bad = await specMatchCommand(`${CONFIG}/vm.specs`, hw);
    expect(bad).toMatchObject({ exitCode: 2, stdout: '' });
    expect(bad.stderr).toBe(`${hw}:2:10: expected ',' or ']' after an array item, found '"'\n`);
    const missing = await specMatchCommand(join(dir, 'nope.specs'), KVM);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toBe(`${join(dir, 'nope.specs')}: cannot read: ENOENT\n`);
  });
});

describe('poolExpandCommand', () => {
  it('prints the expanded entries in order', async () => {
    const r = await poolExpandCommand(`${CONFIG}/kvm-test.cmdb`);
    expect(r.exitCode).toBe(0);
    const entries = JSON.parse(r.stdout) as Record<string, string>[];
    expect(entries.map((e) => [e.hostname, e.ip, e['ip-ipmi']])).toEqual([
      ['kvm1', '10.0.2.3', '10.0.4.3'],
      ['kvm2', '10.0.2.4', '10.0.4.4'],
      ['kvm3', '10.0.2.5', '10.0.4.5'],
    ]);
    expect(Object.keys(entries[0]!)).toEqual([
      'gateway',
      'ip',
      'netmask',
      'gateway-io',
      'ip-io',
      'netmask-io',
      'gateway-ipmi',
      'ip-ipmi',
      'netmask-ipmi',
      'ip-mgmt',
      'netmask-mgmt',
      'gateway-mgmt',
      'hostname',
    ]);
  });

  it('reads YAML models with $generate and $const', async () => {
    const model = join(dir, 'pool.yaml');
    await writeFile(model, '$generate:\n  hostname: rack1-n08-10\n  ip: 10.1.0.8-20\n  ntp:\n    $const: [ntp1, ntp2]\n');
    const r = await poolExpandCommand(model);
    expect(JSON.parse(r.stdout)).toEqual([
      { hostname: 'rack1-n08', ip: '10.1.0.8', ntp: ['ntp1', 'ntp2'] },
      { hostname: 'rack1-n09', ip: '10.1.0.9', ntp: ['ntp1', 'ntp2'] },
      { hostname: 'rack1-n10', ip: '10.1.0.10', ntp: ['ntp1', 'ntp2'] },
    ]);
  });

  it('prints tuples as arrays', async () => {
    const model = join(dir, 'p.cmdb');
    await writeFile(model, "[{'pair': ('a', 1)}]");
    expect(JSON.parse((await poolExpandCommand(model)).stdout)).toEqual([{ pair: ['a', 1] }]);
  });

  it('exits 2 on malformed input', async () => {
    const model = join(dir, 'bad.cmdb');
    await writeFile(model, "generate({'ip': '10.0.0.1-3',\n          'x': os.system('true')})\n");
    const r = await poolExpandCommand(model);
    expect(r).toEqual({ exitCode: 2, stdout: '', stderr: `${model}:2:16: name 'os' is not allowed: only literals and True, False, None, generate(...) are accepted\n` });
  });
});

describe('edeployResolveCommand', () => {
  let config: string;

  beforeEach(async () => {
    config = join(dir, 'config');
    await cp(CONFIG, config, { recursive: true });
    for (const name of await readdir(config)) await chmod(join(config, name), 0o644);
    await writeFile(join(config, 'state'), "[('hp', 1), ('kvm-test', 2)]\n");
  });

  it('prints the profile and the variables, updating the directory', async () => {
    const r = await edeployResolveCommand({ configDir: config, hwPath: KVM });
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { profile: string; vars: Record<string, unknown> };
    expect(out.profile).toBe('kvm-test');
    expect(out.vars).toMatchObject({ ...kvmVars, ip: '10.0.2.3', hostname: 'kvm1', used: 1 });
    expect(await readFile(join(config, 'state'), 'utf8')).toBe("[('hp', 1), ('kvm-test', 1)]\n");
  });

  it("exits 1 with eDeploy's message when nothing matches", async () => {
    const r = await edeployResolveCommand({ configDir: config, hwPath: `${F}/edeploy-hw/ProLiantDL360pGen8654081B21-HP-CZ3323FDVK.hw.json` });
    expect(r).toEqual({ exitCode: 1, stdout: '', stderr: `Unable to match requirements on the following available roles in ${config}: hp, kvm-test\n` });
  });

  it("exits 1 with eDeploy's message when the pool is exhausted", async () => {
    await writeFile(join(config, 'kvm-test.cmdb'), "[{'ip': '10.0.2.3', 'used': 1}]\n");
    const r = await edeployResolveCommand({ configDir: config, hwPath: KVM });
    expect(r).toEqual({ exitCode: 1, stdout: '', stderr: 'No more entry in the CMDB, aborting.\n' });
  });

  it('gives a quota back on failure', async () => {
    await edeployResolveCommand({ configDir: config, hwPath: KVM });
    const r = await edeployResolveCommand({ configDir: config, failure: 'kvm-test' });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ profile: 'kvm-test', changed: true, count: 2 });
    expect(await readFile(join(config, 'state'), 'utf8')).toBe("[('hp', 1), ('kvm-test', 2)]\n");
  });

  it('exits 1 when the lock cannot be had', async () => {
    await writeFile(join(config, 'lock'), '');
    const r = await edeployResolveCommand({ configDir: config, hwPath: KVM, lock: { timeoutMs: 100, pollMs: 10 } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`could not lock ${join(config, 'lock')}`);
  });

  it('exits 2 on bad usage, a missing directory or a malformed state', async () => {
    expect((await edeployResolveCommand({ configDir: config })).exitCode).toBe(2);
    expect((await edeployResolveCommand({ configDir: config, hwPath: KVM, failure: 'hp' })).exitCode).toBe(2);
    expect((await edeployResolveCommand({ configDir: join(dir, 'none'), hwPath: KVM })).exitCode).toBe(2);
    await writeFile(join(config, 'state'), "[('hp', 'many')]\n");
    const r = await edeployResolveCommand({ configDir: config, hwPath: KVM });
    expect(r).toEqual({ exitCode: 2, stdout: '', stderr: `${join(config, 'state')}:1:9: the count of 'hp' must be an integer, a numeric string or '*'\n` });
  });
});
