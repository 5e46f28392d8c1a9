import { describe, expect, it } from 'vitest';
import { readApplyBody, readPool, readProfile, readQuota } from './documents.js';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureGrubOptions, edeployBootArgs, readEdeployConfigDir } from './edeploy-dir.js';

describe('profile and pool documents', () => {
  it('reads quotas as counts or unlimited', () => {
    expect([readQuota(undefined, 'q'), readQuota('unlimited', 'q'), readQuota('*', 'q'), readQuota(0, 'q'), readQuota(' 7 ', 'q')]).toEqual([null, null, null, 0, 7]);
    for (const bad of [-1, 1.5, 'many', true]) expect(() => readQuota(bad, 'profiles[0].quota')).toThrow(/^profiles\[0\]\.quota: must be a whole number/);
  });

  it('reads specs as lines or as eDeploy text, numbers as strings, and names the bad value', () => {
    expect(readProfile({ name: 'p', spec: [['cpu', 'logical', 'number', 8]] }, 'x').spec).toEqual([['cpu', 'logical', 'number', '8']]);
    const text = "# -*- python -*-\n[('cpu', 'logical', 'number', '$n')]\n";
    expect(readProfile({ name: 'p', specText: text }, 'x')).toMatchObject({ spec: [['cpu', 'logical', 'number', '$n']], specSource: text, quota: null, deploy: {} });
    expect(() => readProfile({ name: 'p', spec: [['a', 'b', 'c', {}]] }, 'profiles[3]')).toThrow(/^profiles\[3\]\.spec\[0\]\[3\]: must be a string or a number$/);
    expect(() => readProfile({ name: 'p', specText: "[('a', 'b')]" }, 'body')).toThrow(/^body\.specText: p\.specs:1:2: /);
    expect(() => readProfile({ name: 'p' }, 'body')).toThrow(/^body\.spec: give the spec either/);
  });

  it('expands generate models and names the key of a bad one', () => {
    expect(readPool({ name: 'p', generate: { hostname: 'n1-3', dns: { $const: ['a', 'b'] } } }, 'x').entries).toEqual([
      { hostname: 'n1', dns: ['a', 'b'] },
      { hostname: 'n2', dns: ['a', 'b'] },
      { hostname: 'n3', dns: ['a', 'b'] },
    ]);
    expect(() => readPool({ name: 'p', generate: { ip: { $const: 1, x: 1 } } }, 'pools[1]')).toThrow(/^pools\[1\]\.generate\.ip: '\$const' must be the only key/);
    expect(() => readApplyBody({ pools: [{ name: 'a', entries: [] }, { name: 'a', entries: [] }] })).toThrow(/^pools\[1\]\.name: 'a' appears twice/);
  });

  it('reads an eDeploy CONFIGDIR: state order and counts, specs text, CMDB models and lists', () => {
    const { body, notes } = readEdeployConfigDir('/work/shared/fixtures/edeploy-config');
    expect(body.profiles!.map((p) => [p.name, p.position, p.quota, p.pool])).toEqual([
      ['hp', 10, 0, 'hp'],
      ['vm', 20, 0, null],
      ['vm-centos', 30, 0, 'vm-centos'],
      ['kvm-test', 40, 0, 'kvm-test'],
    ]);
    expect(body.pools!.find((p) => p.name === 'kvm-test')!.generate).toMatchObject({ hostname: 'kvm1-3' });
    // The real kvm-test.configure: each kind of statement the import cannot carry is named, with its first line.
    expect(notes).toEqual([
      "kvm-test: kvm-test.configure not imported (deploys use the profile's deploy configuration and templates); not carried over: " +
        "set_role('base', 'D7-H.1.0.0', …) (line 73): deploy the tree base-D7-H.1.0.0 instead; " +
        '22 run(…) command(s) from line 6 (partitions, RAID, LVM, file systems: the disk layout); ' +
        '3 config(…) file(s) written into the installed system from line 32; ' +
        '2 ipmi.… call(s) from line 70 (BMC users and network); ' +
        'Python 2 (a print statement, line 19)',
    ]);
  });

  it("carries eDeploy's kernel arguments for the installed system into deploy.kernelArgs: the PXE line's | … | part, then grub_options", () => {
    expect(edeployBootArgs('initrd=initrd.pxe SERV=10.0.0.1 | console=tty0  console=ttyS0,115200n8 | quiet')).toBe('console=tty0 console=ttyS0,115200n8');
    expect(edeployBootArgs('initrd=initrd.pxe SERV=10.0.0.1')).toBe('');
    expect(configureGrubOptions("run('x')\ngrub_options('intel_iommu=on')\n# grub_options('commented')\n  grub_options(\"nomodeset\")\ngrub_options('%s' % var['x'])\n")).toEqual({
      options: [{ value: 'intel_iommu=on', line: 2 }, { value: 'nomodeset', line: 4 }],
      unread: 1,
    });

    const dir = mkdtempSync(join(tmpdir(), 'edeploy-args-'));
    cpSync('/work/shared/fixtures/edeploy-config', dir, { recursive: true });
    writeFileSync(join(dir, 'kvm-test.configure'), "set_role('base', 'D7-H.1.0.0', '/dev/vda')\ngrub_options('intel_iommu=on')\n");
    const { body, notes } = readEdeployConfigDir(dir, { pxeCmdline: 'initrd=initrd.pxe SERV=10.0.0.1 | console=ttyS0,115200n8 |' });
    expect(body.profiles!.map((p) => [p.name, p.deploy])).toEqual([
      ['hp', { kernelArgs: 'console=ttyS0,115200n8' }],
      ['vm', { kernelArgs: 'console=ttyS0,115200n8' }],
      ['vm-centos', { kernelArgs: 'console=ttyS0,115200n8' }],
      ['kvm-test', { kernelArgs: 'console=ttyS0,115200n8 intel_iommu=on' }],
    ]);
    expect(notes).toEqual([
      "kvm-test: kvm-test.configure not imported (deploys use the profile's deploy configuration and templates); its grub_options are the profile's kernelArgs; not carried over: set_role('base', 'D7-H.1.0.0', …) (line 1): deploy the tree base-D7-H.1.0.0 instead",
    ]);
    expect(readEdeployConfigDir(dir).body.profiles!.find((p) => p.name === 'kvm-test')!.deploy).toEqual({ kernelArgs: 'intel_iommu=on' });
    expect(() => readEdeployConfigDir(dir, { pxeCmdline: 'a | x=$(reboot) |' })).toThrow(/^pxeCmdline: /);
    writeFileSync(join(dir, 'kvm-test.configure'), "\ngrub_options('a;b')\n");
    expect(() => readEdeployConfigDir(dir)).toThrow(/kvm-test\.configure:2:1: grub_options\('a;b'\) cannot be carried/);
  });
});
