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
    expect(baseLayerKey(inputs({ packages: [], modules: [], firmware: [] }))).toBe(baseLayerKey(plain));
    // A package the installer already carries changes nothing either.
    expect(baseLayerKey(inputs({ packages: ['curl'] }))).toBe(baseLayerKey(plain));
  });

  it('adds packages, module rules and firmware (with the non-free-firmware component), each changing the key', () => {
    const plain = baseLayerKey(inputs());
    const withTools = inputs({ packages: ['sysbench', 'fio', 'fio'] });
    expect(withTools.packages.filter((p) => p === 'fio')).toEqual(['fio']);
    expect(withTools.packages).toContain('sysbench');
    expect(withTools.packages).toEqual([...withTools.packages].sort());
    const withModule = inputs({ modules: ['raid1', 'drivers/md/'] });
    expect(withModule.moduleRules.slice(-2)).toEqual(['raid1', 'drivers/md/']);
    const withFirmware = inputs({ firmware: ['firmware-bnx2'] });
    expect(withFirmware.packages).toContain('firmware-bnx2');
    expect(withFirmware.components).toEqual(['main', 'non-free-firmware']);
    const keys = new Set([plain, baseLayerKey(withTools), baseLayerKey(withModule), baseLayerKey(withFirmware)]);
    expect(keys.size).toBe(4);
    // The order flags are given in does not matter for packages (sorted).
    expect(baseLayerKey(inputs({ packages: ['fio', 'sysbench'] }))).toBe(baseLayerKey(withTools));
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
