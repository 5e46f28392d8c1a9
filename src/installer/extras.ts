import { validation } from '../core/errors.js';
import { INSTALLER_PACKAGES } from './contents.js';
import { INSTALLER_MODULE_RULES } from './kernel-modules.js';

/**
 * What a site adds to the installer for its own tools (`plinth installer build --package
 * sysbench --module raid1 --firmware firmware-bnx2`, or the `installerBuild` settings):
 *
 * - packages: Debian packages from the suite's `main` component, installed with their
 *   dependencies by apt-get (the health checks' sysbench and fio, a vendor's RAID tool…);
 * - modules: kernel modules kept beyond the installer's own set, written as its rules are
 *   (`drivers/md/` keeps a directory, `drivers/md/raid1` one module) or by a module's file
 *   name alone (`raid1`, wherever it lives in the tree), with their dependencies;
 * - firmware: Debian packages from `non-free-firmware` (`firmware-bnx2`,
 *   `firmware-misc-nonfree`, `intel-microcode`); naming one adds that component.
 *
 * They make the extras layer (extras-layer.ts), built over the cached base layer, which stays
 * the one an installer without extras has: adding a tool costs an apt-get install rather than
 * a second debootstrap, adding a module a copy from the kernel package the base was built
 * with. With no extras given, the plan is the installer's own and its keys do not move.
 */
export interface InstallerExtras {
  packages?: readonly string[];
  modules?: readonly string[];
  firmware?: readonly string[];
}

/** A Debian package name (Debian policy 5.6.1). */
const PACKAGE = /^[a-z0-9][a-z0-9+.-]{1,99}$/;
/** A module rule: a path below kernel/ (`drivers/md/`, `drivers/md/raid1`) or a module's name. */
const MODULE = /^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$/;

export interface InstallerPlan {
  /** Every package debootstrap installs besides minbase (the installer's own), sorted. */
  packages: string[];
  /** The base layer's module rules (the installer's own). */
  moduleRules: string[];
  /** The site's module rules that the installer's own do not already name: the extras layer's. */
  extraModules: string[];
  /** The site's packages and firmware that the installer does not carry already, sorted, each once: the extras layer's. */
  extraPackages: string[];
  /** Archive components the extras layer installs from; only `main` unless firmware is asked for. */
  extraComponents: string[];
}

function checked(values: readonly string[] | undefined, field: string, pattern: RegExp, what: string): string[] {
  return (values ?? []).map((v, i) => {
    const s = v.trim();
    if (!pattern.test(s) || s.split('/').includes('..')) throw validation(`${field}[${i}]`, `'${v}' is not ${what}`);
    return s;
  });
}

/** The installer's packages, module rules and archive components with the site's extras; bad names are refused, naming the field. */
export function installerPlan(extras: InstallerExtras = {}): InstallerPlan {
  const packages = checked(extras.packages, 'packages', PACKAGE, 'a Debian package name');
  const firmware = checked(extras.firmware, 'firmware', PACKAGE, 'a Debian firmware package name (firmware-bnx2, intel-microcode…)');
  const modules = checked(extras.modules, 'modules', MODULE, 'a kernel module (raid1) or a path below kernel/ (drivers/md/raid1, drivers/md/)');
  return {
    packages: [...INSTALLER_PACKAGES].sort(),
    moduleRules: [...INSTALLER_MODULE_RULES],
    extraModules: [...new Set(modules)].filter((m) => !INSTALLER_MODULE_RULES.includes(m)),
    extraPackages: [...new Set([...packages, ...firmware])].filter((p) => !INSTALLER_PACKAGES.includes(p)).sort(),
    extraComponents: firmware.length > 0 ? ['main', 'non-free-firmware'] : ['main'],
  };
}
