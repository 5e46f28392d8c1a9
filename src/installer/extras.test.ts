import { describe, expect, it } from 'vitest';
import { baseLayerInputs, baseLayerKey } from './build.js';
import { INSTALLER_PACKAGES } from './contents.js';
import { installerPlan } from './extras.js';
import { INSTALLER_MODULE_RULES, moduleMatchesRules } from './kernel-modules.js';

const node = { path: '/usr/bin/node', sha256: 'a'.repeat(64) };
const inputs = (extras?: Parameters<typeof installerPlan>[0]) => baseLayerInputs({ plan: installerPlan(extras), compression: 'zstd-10', node });

describe('installer extras (packages, modules, firmware)', () => {
  it('without extras the plan and the base layer inputs are the installer\'s own: the cache key does not move', () => {
    const plain = inputs();
    expect(plain.packages).toEqual([...INSTALLER_PACKAGES].sort());
    expect(plain.moduleRules).toEqual([...INSTALLER_MODULE_RULES]);
    expect('components' in plain).toBe(false);
    expect(installerPlan().extraPackages).toEqual([]);
    expect(installerPlan().extraModules).toEqual([]);
    expect(baseLayerKey(inputs({ packages: [], modules: [], firmware: [] }))).toBe(baseLayerKey(plain));
    // A package the installer already carries is no extra.
    expect(installerPlan({ packages: ['curl'] }).extraPackages).toEqual([]);
  });

  it('packages, firmware and modules go to the extras layer and leave the base layer\'s key alone', () => {
    const plain = baseLayerKey(inputs());
    const withTools = installerPlan({ packages: ['sysbench', 'fio', 'fio', 'curl'] });
    expect(withTools.extraPackages).toEqual(['fio', 'sysbench']);
    expect(withTools.extraComponents).toEqual(['main']);
    expect(withTools.packages).toEqual([...INSTALLER_PACKAGES].sort());
    expect(baseLayerKey(inputs({ packages: ['sysbench', 'fio'] }))).toBe(plain);
    const withFirmware = installerPlan({ packages: ['fio'], firmware: ['firmware-bnx2'] });
    expect(withFirmware.extraPackages).toEqual(['fio', 'firmware-bnx2']);
    expect(withFirmware.extraComponents).toEqual(['main', 'non-free-firmware']);
    expect(baseLayerKey(inputs({ firmware: ['firmware-bnx2'] }))).toBe(plain);
    const withModule = installerPlan({ modules: ['raid1', 'drivers/md/', 'raid1', 'drivers/md/raid1'] });
    // A rule the installer has already is no extra; a module name is kept as given.
    expect(withModule.extraModules).toEqual(['raid1', 'drivers/md/']);
    expect(withModule.moduleRules).toEqual([...INSTALLER_MODULE_RULES]);
    expect(baseLayerKey(inputs({ modules: ['raid1'] }))).toBe(plain);
    // The order flags are given in does not matter (sorted).
    expect(installerPlan({ packages: ['fio', 'sysbench'] }).extraPackages).toEqual(withTools.extraPackages);
  });

  it('refuses names that are not package names or module rules, naming the field', () => {
    expect(() => installerPlan({ packages: ['sysbench', 'Bad Name'] })).toThrow(/^packages\[1\]: 'Bad Name' is not a Debian package name/);
    expect(() => installerPlan({ packages: ['--force-yes'] })).toThrow(/packages\[0\]/);
    expect(() => installerPlan({ modules: ['../../etc'] })).toThrow(/^modules\[0\]/);
    expect(() => installerPlan({ modules: ['drivers/md/../../x'] })).toThrow(/^modules\[0\]/);
    expect(() => installerPlan({ firmware: ['firmware bnx2'] })).toThrow(/^firmware\[0\]/);
  });

  it('a module rule without a slash names a module by its file name, wherever it is', () => {
    expect(moduleMatchesRules('kernel/drivers/md/raid1.ko.xz', ['raid1'])).toBe(true);
    expect(moduleMatchesRules('kernel/drivers/md/raid10.ko', ['raid1'])).toBe(false);
    expect(moduleMatchesRules('kernel/drivers/md/md-mod.ko', ['md-mod'])).toBe(true);
  });
});
