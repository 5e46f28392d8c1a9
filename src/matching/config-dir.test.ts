import { chmod, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PlinthError } from '../core/errors.js';
import type { HwTuple } from '../core/facts.js';
import { failProfileInConfigDir, resolveInConfigDir } from './config-dir.js';
import { EdeployError } from './edeploy-errors.js';
import { readCmdbText, readHwText, readStateText } from './file-forms.js';
import { acquireLock } from './file-lock.js';
import { SourceError } from './source-error.js';

const F = '/work/shared/fixtures';
const kvmHw = readHwText(await readFile(`${F}/edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw`, 'utf8'));

/** The KVM test machine with other MAC addresses: another machine of the same model. */
function otherKvm(n: number): HwTuple[] {
  return kvmHw.map((t): HwTuple => (t[2] === 'serial' ? [t[0], t[1], t[2], t[3].replace(/^52:54:12/, `52:54:${(0x20 + n).toString(16)}`)] : t));
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plinth-edeploy-'));
  await cp(`${F}/edeploy-config`, dir, { recursive: true });
  // The fixture files are read-only; the copies must be writable like a real CONFIGDIR.
  for (const name of await readdir(dir)) await chmod(join(dir, name), 0o644);
  await writeFile(join(dir, 'state'), "[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 3)]\n");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const text = (name: string) => readFile(join(dir, name), 'utf8');

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('resolveInConfigDir', () => {
  it('matches the profile, allocates from its CMDB and rewrites state and CMDB', async () => {
    const originalCmdb = await text('kvm-test.cmdb');
    const r = await resolveInConfigDir(dir, kvmHw);
    expect(r.profile).toBe('kvm-test');
    expect(r.vars).toEqual({
      disk: 'vda',
      eth: 'eth0',
      mac: '52:54:12:34:00:01',
      'eth-io': 'eth1',
      'mac-io': '52:54:12:34:00:02',
      'eth-mgmt': 'eth2',
      'mac-mgmt': '52:54:12:34:00:03',
      'ipmi-fake-channel': '0',
      gateway: '10.0.2.2',
      ip: '10.0.2.3',
      netmask: '255.255.255.0',
      'gateway-io': '10.0.3.2',
      'ip-io': '10.0.3.3',
      'netmask-io': '255.255.255.0',
      'gateway-ipmi': '10.0.4.2',
      'ip-ipmi': '10.0.4.3',
      'netmask-ipmi': '255.255.255.0',
      'ip-mgmt': '192.168.1.1',
      'netmask-mgmt': '255.255.255.0',
      'gateway-mgmt': '192.168.1.254',
      hostname: 'kvm1',
      used: 1,
    });
    expect(await text('state')).toBe("[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 2)]\n");
    // The generate() form is kept aside; the CMDB is now the expanded list, eDeploy-style.
    expect(await text('kvm-test.cmdb.orig')).toBe(originalCmdb);
    const cmdb = await text('kvm-test.cmdb');
    expect(cmdb.startsWith("[{'disk': 'vda',\n  'eth': 'eth0',\n  'eth-io': 'eth1',")).toBe(true);
    const back = readCmdbText(cmdb);
    expect(back.form).toBe('list');
    expect(back.entries.map((e) => [e.hostname, e.used ?? null])).toEqual([
      ['kvm1', 1],
      ['kvm2', null],
      ['kvm3', null],
    ]);
    // No lock and no temporary file left behind; untouched profiles untouched.
    const names = await readdir(dir);
    expect(names.filter((n) => n === 'lock' || n.endsWith('.tmp'))).toEqual([]);
    expect(names).not.toContain('hp.cmdb.orig');
  });

  it('gives the same machine its entry back and another machine the next one', async () => {
    const first = await resolveInConfigDir(dir, kvmHw);
    const orig = await stat(join(dir, 'kvm-test.cmdb.orig'));
    const again = await resolveInConfigDir(dir, kvmHw);
    expect(again.vars.ip).toBe(first.vars.ip);
    const other = await resolveInConfigDir(dir, otherKvm(1));
    expect(other.vars).toMatchObject({ ip: '10.0.2.4', hostname: 'kvm2', mac: '52:54:21:34:00:01' });
    expect(readStateText(await text('state'))).toContainEqual({ profile: 'kvm-test', count: 0 });
    // Once expanded, the CMDB is no generate() form: the .orig copy is not replaced.
    expect((await stat(join(dir, 'kvm-test.cmdb.orig'))).mtimeMs).toBe(orig.mtimeMs);
    expect(await text('kvm-test.cmdb.orig')).toContain('generate(');
  });

  it("stops with eDeploy's message when the pool is exhausted, writing nothing", async () => {
    await writeFile(join(dir, 'state'), "[('kvm-test', 10)]\n");
    for (let n = 0; n < 3; n++) await resolveInConfigDir(dir, otherKvm(n));
    const state = await text('state');
    const cmdb = await text('kvm-test.cmdb');
    const e = await rejection(resolveInConfigDir(dir, otherKvm(3)));
    expect(e).toBeInstanceOf(EdeployError);
    expect(e.message).toBe('No more entry in the CMDB, aborting.');
    expect(await text('state')).toBe(state);
    expect(await text('kvm-test.cmdb')).toBe(cmdb);
    expect(await readdir(dir)).not.toContain('lock');
  });

  it("stops with eDeploy's messages when no profile matches", async () => {
    const notKvm = kvmHw.filter((t) => t[3] !== 'kvm');
    const e = await rejection(resolveInConfigDir(dir, notKvm));
    expect(e.message).toBe(`Unable to match requirements on the following available roles in ${dir}: hp, vm-centos, kvm-test`);
    expect(await text('state')).toBe("[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 3)]\n");
    await cp(`${F}/edeploy-config/state`, join(dir, 'state'));
    expect((await rejection(resolveInConfigDir(dir, kvmHw))).message).toBe(`No more role available in ${join(dir, 'state')}`);
  });

  it('has no pool for a profile without a .cmdb file, and unlimited profiles keep their state', async () => {
    const dl = readHwText(await readFile(`${F}/edeploy-hw/ProLiantDL360pGen8654081B21-HP-CZ3323FDVK.hw`, 'utf8'));
    await writeFile(join(dir, 'state'), "[('vm', '*')]\n");
    const r = await resolveInConfigDir(dir, dl);
    expect(r).toEqual({ profile: 'vm', vars: { nbcpu: '8', disk: '1I:1:1', size: '300', disk2: '1I:1:2', size2: '300' } });
    expect(await readdir(dir)).not.toContain('vm.cmdb');
    expect(await text('state')).toBe("[('vm', '*')]\n");
  });

  it('looks up $$ variables in the CMDB, enumerating a tuple of tags (decision 1)', async () => {
    await writeFile(join(dir, 'tagged.specs'), "[\n  ('system', 'product', 'vendor', '$$tag'),\n  ('network', '$eth', 'serial', '$mac'),\n]\n");
    await writeFile(join(dir, 'tagged.cmdb'), "generate({'tag': ('TAG1', 'kvm', 'TAG3'),\n          'ip': '192.168.122.3-5',\n          'hostname': 'host3-5'})\n");
    await writeFile(join(dir, 'state'), "[('tagged', '*')]\n");
    const r = await resolveInConfigDir(dir, kvmHw);
    expect(r.vars).toMatchObject({ tag: 'kvm', ip: '192.168.122.4', hostname: 'host4', eth: 'eth2', used: 1 });
    await writeFile(join(dir, 'tagged.cmdb'), "[{'tag': 'TAG1', 'ip': '192.168.122.3'}]\n");
    expect((await rejection(resolveInConfigDir(dir, kvmHw))).message).toBe('No entry matched in the CMDB, aborting.');
  });

  it('reports a malformed spec file it reaches, and releases the lock', async () => {
    await writeFile(join(dir, 'state'), "[('hp-mlx', 1), ('kvm-test', 1)]\n");
    const e = await rejection(resolveInConfigDir(dir, kvmHw));
    expect(e).toBeInstanceOf(SourceError);
    expect(e.message).toMatch(/hp-mlx\.specs:22:5: /);
    expect(await readdir(dir)).not.toContain('lock');
  });

  it('does not read the file of a profile it never reaches', async () => {
    await writeFile(join(dir, 'state'), "[('kvm-test', 1), ('hp-mlx', 1)]\n");
    expect((await resolveInConfigDir(dir, kvmHw)).profile).toBe('kvm-test');
  });

  it('refuses profile names that are not file names', async () => {
    await writeFile(join(dir, 'state'), "[('../etc/passwd', 1)]\n");
    expect((await rejection(resolveInConfigDir(dir, kvmHw))).message).toContain('cannot be used as a file name');
  });
});

describe('the lock (decision 9)', () => {
  it('is honoured: a held lock makes a resolve time out, changing nothing', async () => {
    await writeFile(join(dir, 'lock'), 'someone else\n');
    const started = Date.now();
    const e = await rejection(resolveInConfigDir(dir, kvmHw, { lock: { timeoutMs: 300, pollMs: 20 } }));
    expect(e).toBeInstanceOf(PlinthError);
    expect((e as PlinthError).code).toBe('timeout');
    expect(e.message).toContain(join(dir, 'lock'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await text('state')).toBe("[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 3)]\n");
    expect(await text('lock')).toBe('someone else\n');
  });

  it('makes a second resolve wait for the first to release it', async () => {
    const held = await acquireLock(join(dir, 'lock'));
    const started = Date.now();
    const waiting = resolveInConfigDir(dir, kvmHw, { lock: { timeoutMs: 5000, pollMs: 20 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(await text('state')).toBe("[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 3)]\n");
    await held.release();
    expect((await waiting).profile).toBe('kvm-test');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it('serialises concurrent resolves: each machine its own entry, every decrement kept', async () => {
    await writeFile(join(dir, 'state'), "[('kvm-test', 3)]\n");
    const results = await Promise.all([0, 1, 2].map((n) => resolveInConfigDir(dir, otherKvm(n), { lock: { pollMs: 5 } })));
    expect(new Set(results.map((r) => r.vars.ip)).size).toBe(3);
    expect(await text('state')).toBe("[('kvm-test', 0)]\n");
    expect(readCmdbText(await text('kvm-test.cmdb')).entries.every((e) => e.used === 1)).toBe(true);
  });

  it('uses the lock file given', async () => {
    const lockPath = join(dir, 'other.lock');
    await writeFile(lockPath, '');
    const e = await rejection(resolveInConfigDir(dir, kvmHw, { lockPath, lock: { timeoutMs: 100, pollMs: 10 } }));
    expect(e.message).toContain('other.lock');
  });
});

describe('failProfileInConfigDir', () => {
  it('gives the quota back under the lock', async () => {
    await resolveInConfigDir(dir, kvmHw);
    expect(await failProfileInConfigDir(dir, 'kvm-test')).toEqual({ profile: 'kvm-test', changed: true, count: 3 });
    expect(await text('state')).toBe("[('hp', 2), ('vm', 0), ('vm-centos', 1), ('kvm-test', 3)]\n");
    expect(await readdir(dir)).not.toContain('lock');
  });

  it("leaves '*' and unknown profiles alone", async () => {
    await writeFile(join(dir, 'state'), "[('vm', '*')]\n");
    expect(await failProfileInConfigDir(dir, 'vm')).toEqual({ profile: 'vm', changed: false, count: '*' });
    expect(await failProfileInConfigDir(dir, 'nope')).toEqual({ profile: 'nope', changed: false, count: null });
    expect(await text('state')).toBe("[('vm', '*')]\n");
  });
});
