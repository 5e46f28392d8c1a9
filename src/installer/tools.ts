import { hostEnvironment } from '../build/environment.js';
import type { HostTool } from '../build/host-tools.js';
import type { ToolOptions } from '../build/process.js';

/** Host programs the build runs, with the Debian package to install when one is missing. */
export const HOST_TOOLS: HostTool[] = [
  { need: 'debootstrap', debianPackage: 'debootstrap' },
  { need: 'dpkg-deb', debianPackage: 'dpkg' },
  { need: 'depmod', debianPackage: 'kmod' },
  { need: 'ldd', debianPackage: 'libc-bin' },
  { need: 'chroot', debianPackage: 'coreutils' },
  { need: 'mknod', debianPackage: 'coreutils' },
  { need: 'umount', debianPackage: 'mount' },
];

/**
 * How the installer build runs host programs: in the caller's environment (plus the sbin
 * directories and the C locale, whose output ldd and depmod are parsed in), named in abort
 * messages as the installer build.
 */
export const installerTool = (signal?: AbortSignal): ToolOptions => ({ job: 'installer build', env: hostEnvironment(), signal });
