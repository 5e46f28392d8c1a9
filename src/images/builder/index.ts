/**
 * Plinth's image builder: bootable Debian 12 raw disk images (BIOS and UEFI, cloud-init
 * NoCloud) built from Debian packages with debootstrap. See docs/decisions.md.
 */
export { buildImage, checksumFileName, FIRMWARE, IMAGE_BUILDER_VERSION, imageFileName, manifestFileName } from './build.js';
export { imageBuildCommand, imageBuilderPaths, treeBuildCommand, type CommandOutput, type ImageBuildCommandOptions } from './command.js';
export { buildTree, TREE_PACKAGES, treeFileName, type BuildTreeOptions, type BuiltTree } from './tree.js';
export {
  DEBIAN_RELEASE,
  DEBIAN_SUITE,
  DEFAULT_IMAGE_NAME,
  DEFAULT_IMAGE_SIZE,
  DEFAULT_MIRROR,
  MIN_IMAGE_SIZE,
  type BuildImageOptions,
  type BuiltImage,
  type Firmware,
  type ImageManifest,
  type ManifestPackage,
  type ManifestPartition,
} from './options.js';
