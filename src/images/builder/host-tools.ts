/**
 * The host programs an image build runs, and the Debian package each comes from. GRUB is not
 * among them: the boot loaders are installed by the image's own GRUB inside the chroot.
 */
import type { HostTool } from '../../build/host-tools.js';

export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export const BUILD_HOST_REQUIREMENTS: readonly HostTool[] = [
  { need: 'debootstrap', debianPackage: 'debootstrap' },
  { need: DEBIAN_ARCHIVE_KEYRING, debianPackage: 'debian-archive-keyring' },
  { need: 'sgdisk', debianPackage: 'gdisk' },
  { need: 'mkfs.vfat', debianPackage: 'dosfstools' },
  { need: 'fsck.vfat', debianPackage: 'dosfstools' },
  { need: 'mcopy', debianPackage: 'mtools' },
  { need: 'mkfs.ext4', debianPackage: 'e2fsprogs' },
  { need: 'e2fsck', debianPackage: 'e2fsprogs' },
  { need: 'zstd', debianPackage: 'zstd' },
  { need: 'tar', debianPackage: 'tar' },
  { need: 'losetup', debianPackage: 'mount' },
  { need: 'mount', debianPackage: 'mount' },
  { need: 'partx', debianPackage: 'util-linux' },
  { need: 'fstrim', debianPackage: 'util-linux' },
  { need: 'fallocate', debianPackage: 'util-linux' },
  { need: 'blockdev', debianPackage: 'util-linux' },
  { need: 'chroot', debianPackage: 'coreutils' },
  { need: 'mknod', debianPackage: 'coreutils' },
];

/** What the NoCloud seed of the lab tests needs on top (a FAT image made without mounting). */
export const SEED_HOST_REQUIREMENTS: readonly HostTool[] = [
  { need: 'mkfs.vfat', debianPackage: 'dosfstools' },
  { need: 'mcopy', debianPackage: 'mtools' },
];
