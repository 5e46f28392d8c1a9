/**
 * The installer: a live Linux image (kernel + initramfs) built from Debian packages, with
 * Node.js and the agent inside. Machines network-boot into it; its /init brings up the
 * network and runs the agent. See init-script.ts for the kernel command-line contract.
 */
export {
  buildInstaller,
  BUILDER_VERSION,
  DEFAULT_COMPRESSION,
  INITRAMFS_ARTIFACT,
  KERNEL_ARTIFACT,
  type BuildInstallerOptions,
  type BuildInstallerResult,
} from './build.js';
export { installerBuildCommand, type InstallerBuildCommandOptions } from './build-command.js';
export {
  installerArtifacts,
  installerCacheDir,
  installerDir,
  type InstallerArtifact,
  type InstallerArtifacts,
  type InstallerManifest,
  type LayerRecord,
  type KernelRecord,
} from './manifest.js';
export type { InstallerCompression } from './cpio-archive.js';
export { AGENT_PATH, NODE_PATH } from './init-script.js';
export { DEFAULT_MIRROR, DEFAULT_SUITE, INSTALLER_PACKAGES } from './contents.js';
export {
  buildInstallerIso,
  builtInstallerIso,
  installerIsoDir,
  isoGrubConfig,
  isoKernelCmdline,
  ISO_HOST_TOOLS,
  machineIsoDir,
  removeMachineIso,
  staticNetworkArgs,
  VMEDIA_BOOT_ARG,
  type InstallerIsoResult,
  type IsoStaticNetwork,
} from './iso.js';
export { installerPlan, type InstallerExtras, type InstallerPlan } from './extras.js';
