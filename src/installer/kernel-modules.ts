/**
 * Which kernel modules the installer keeps. Debian's kernel ships about 4,000 modules
 * (400 MB); an installer needs the storage and network drivers of servers and virtual
 * machines, a few filesystems, IPMI and efivarfs. Everything else (sound, media, wireless,
 * GPUs, ...) only makes the initramfs larger and slower to unpack.
 *
 * Rules are paths below `lib/modules/<release>/kernel/`: a rule ending in `/` keeps every
 * module under that directory, any other rule names one module file without its `.ko*`
 * suffix, and a rule without `/` (added by a site: `raid1`) names a module by its file name
 * wherever it is. The dependencies of kept modules (modules.dep) are kept too.
 */
export const INSTALLER_MODULE_RULES: readonly string[] = [
  // Storage: virtual machines.
  'drivers/block/virtio_blk',
  'drivers/scsi/virtio_scsi',
  'drivers/scsi/vmw_pvscsi',
  'drivers/scsi/hv_storvsc',
  // Storage: SATA/SAS/NVMe/RAID controllers of servers.
  'drivers/ata/',
  'drivers/nvme/host/',
  'drivers/pci/controller/vmd',
  'drivers/scsi/sd_mod',
  'drivers/scsi/sr_mod',
  'drivers/scsi/sg',
  'drivers/scsi/ses',
  'drivers/scsi/scsi_transport_sas',
  'drivers/scsi/mpt3sas/',
  'drivers/scsi/mpi3mr/',
  'drivers/scsi/megaraid/',
  'drivers/scsi/smartpqi/',
  'drivers/scsi/hpsa',
  'drivers/scsi/aacraid/',
  'drivers/scsi/arcmsr/',
  'drivers/scsi/isci/',
  'drivers/scsi/pm8001/',
  'drivers/scsi/mvsas/',
  'drivers/mmc/core/',
  'drivers/mmc/host/sdhci',
  'drivers/mmc/host/sdhci-pci',
  'drivers/mmc/host/sdhci-acpi',
  // Tree deploys' disk layouts: software RAID (mdadm) and LVM (device mapper).
  'drivers/md/md-mod',
  'drivers/md/raid0',
  'drivers/md/raid1',
  'drivers/md/raid10',
  'drivers/md/raid456',
  'drivers/md/dm-mod',
  // Images are written through these: loop for raw files, nbd for qemu-nbd.
  'drivers/block/loop',
  'drivers/block/nbd',
  // USB: sticks and virtual media, keyboards for the debug shell.
  'drivers/usb/host/',
  'drivers/usb/storage/',
  'drivers/hid/hid-generic',
  'drivers/hid/usbhid/',
  // Network: virtual machines.
  'drivers/net/virtio_net',
  'drivers/net/vmxnet3/',
  'drivers/net/hyperv/',
  // Network: server NICs.
  'drivers/net/ethernet/intel/',
  'drivers/net/ethernet/mellanox/mlx4/',
  'drivers/net/ethernet/mellanox/mlx5/core/',
  'drivers/net/ethernet/broadcom/',
  'drivers/net/ethernet/realtek/',
  'drivers/net/ethernet/emulex/',
  'drivers/net/ethernet/cisco/enic/',
  'drivers/net/ethernet/amazon/ena/',
  // Filesystems the agent creates, mounts or reads.
  'fs/ext4/',
  'fs/fat/',
  'fs/xfs/',
  'fs/isofs/',
  'fs/efivarfs/',
  'fs/nls/nls_cp437',
  'fs/nls/nls_ascii',
  'fs/nls/nls_iso8859-1',
  'fs/nls/nls_utf8',
  // NOTE: ext4 names crc32c as a *soft* dependency, which modules.dep does not list.
  'crypto/crc32c_generic',
  'arch/x86/crypto/crc32c-intel',
  // BMC access from the host side (ipmitool's "open" interface).
  'drivers/char/ipmi/',
  // Entropy for TLS early after boot in virtual machines.
  'drivers/char/hw_random/virtio-rng',
  // virtio transport (virtio_pci and friends).
  'drivers/virtio/',
];

const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

/** True when a module path (relative to lib/modules/<release>/) is kept by a rule. */
export function moduleMatchesRules(modulePath: string, rules: readonly string[] = INSTALLER_MODULE_RULES): boolean {
  const relative = modulePath.replace(/^kernel\//, '');
  const withoutSuffix = relative.replace(MODULE_SUFFIX, '');
  const name = withoutSuffix.slice(withoutSuffix.lastIndexOf('/') + 1);
  return rules.some((rule) => (rule.endsWith('/') ? relative.startsWith(rule) : rule.includes('/') ? withoutSuffix === rule : name === rule));
}

/** Parses modules.dep: module path → the module paths it needs. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const module = line.slice(0, colon).trim();
    const needs = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    deps.set(module, needs);
  }
  return deps;
}

/**
 * The modules to keep: those matching the rules plus everything they depend on,
 * sorted. Rules that match nothing are returned too, so a kernel upgrade that renames a
 * driver shows up in the build log instead of silently dropping it.
 */
export function selectModules(
  modulesDep: Map<string, string[]>,
  rules: readonly string[] = INSTALLER_MODULE_RULES,
): { modules: string[]; unmatchedRules: string[] } {
  const kept = new Set<string>();
  const pending: string[] = [];
  const matchedRules = new Set<string>();
  for (const module of modulesDep.keys()) {
    for (const rule of rules) {
      if (moduleMatchesRules(module, [rule])) {
        matchedRules.add(rule);
        pending.push(module);
      }
    }
  }
  while (pending.length > 0) {
    const module = pending.pop()!;
    if (kept.has(module)) continue;
    kept.add(module);
    for (const dep of modulesDep.get(module) ?? []) if (!kept.has(dep)) pending.push(dep);
  }
  return {
    modules: [...kept].sort(),
    unmatchedRules: rules.filter((r) => !matchedRules.has(r)),
  };
}
