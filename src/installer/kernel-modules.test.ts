import { describe, expect, it } from 'vitest';
import { moduleMatchesRules, parseModulesDep, selectModules } from './kernel-modules.js';

const modulesDep = `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/sound/pci/hda/snd-hda-intel.ko: kernel/sound/core/snd.ko
kernel/sound/core/snd.ko:
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko
kernel/drivers/ata/libata.ko:
kernel/fs/xfs/xfs.ko.xz:
`;

describe('installer kernel modules', () => {
  it('matches directory rules and single-module rules', () => {
    expect(moduleMatchesRules('kernel/drivers/ata/ahci.ko', ['drivers/ata/'])).toBe(true);
    expect(moduleMatchesRules('kernel/drivers/net/virtio_net.ko', ['drivers/net/virtio_net'])).toBe(true);
    expect(moduleMatchesRules('kernel/fs/xfs/xfs.ko.xz', ['fs/xfs/'])).toBe(true);
    // A single-module rule is the whole name, not a prefix.
    expect(moduleMatchesRules('kernel/drivers/net/virtio_net_extra.ko', ['drivers/net/virtio_net'])).toBe(false);
  });

  it('keeps the dependencies of selected modules and nothing else', () => {
    const { modules, unmatchedRules } = selectModules(parseModulesDep(modulesDep), ['drivers/net/virtio_net', 'drivers/ata/ahci', 'drivers/scsi/mpt3sas/']);
    expect(modules).toEqual([
      'kernel/drivers/ata/ahci.ko',
      'kernel/drivers/ata/libahci.ko',
      'kernel/drivers/ata/libata.ko',
      'kernel/drivers/net/net_failover.ko',
      'kernel/drivers/net/virtio_net.ko',
      'kernel/net/core/failover.ko',
    ]);
    expect(unmatchedRules).toEqual(['drivers/scsi/mpt3sas/']);
  });
});
