/**
 * What goes into the installer's root filesystem, besides the kernel modules
 * (kernel-modules.ts) and Plinth's own files (init-script.ts).
 */

export const DEFAULT_SUITE = 'bookworm';
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/**
 * Packages installed on top of debootstrap's minbase. The first group is what the agent
 * runs; the second is what the installer itself needs or what writing images needs.
 */
export const INSTALLER_PACKAGES: readonly string[] = [
  // Hardware inspection and disk work done by the agent.
  'dmidecode',
  'util-linux',
  'pciutils',
  'ethtool',
  'iproute2',
  'ipmitool',
  'parted',
  'gdisk',
  'e2fsprogs',
  'xfsprogs',
  'dosfstools',
  'qemu-utils',
  'curl',
  'cloud-guest-utils',
  'hdparm',
  'nvme-cli',
  'kmod',
  'udev',
  // The installer's own needs: udhcpc (DHCPv4) and reboot/poweroff come from busybox,
  // IPv6 (router advertisements, SLAAC, DHCPv6) from dhcpcd (Debian's busybox has no
  // udhcpc6), TLS trust anchors for curl, and decompressors for raw.xz / raw.zst images.
  'busybox',
  'dhcpcd-base',
  'ca-certificates',
  'xz-utils',
  'zstd',
  // Installer and rescue runs: dropbear is the SSH server the agent starts with the run's
  // keys; Python is what Ansible's modules run with on the target.
  'dropbear-bin',
  'python3',
  // udp-receiver joins a multicast deploy session, uftpd a uftp one (the agent falls back
  // to HTTP without them).
  'udpcast',
  'uftp',
  // Tree deploys: disk layouts with software RAID and LVM, the tree copied by rsync, and
  // eDeploy's ONSUCCESS=kexec into the installed kernel.
  'mdadm',
  'lvm2',
  'rsync',
  'kexec-tools',
];

/**
 * Packages whose files are removed after installation. None since the installer carries
 * Python for Ansible (README: what it adds to the initramfs).
 */
export const PRUNED_PACKAGES: readonly string[] = [];

/**
 * Paths (relative to the root) removed after installation: documentation, translations,
 * package-manager caches and indexes, and the sources of udev's compiled hwdb.bin.
 * Copyright files under usr/share/doc are kept.
 */
export const PRUNED_PATHS: readonly string[] = [
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/bash-completion',
  'usr/share/zsh',
  'usr/lib/udev/hwdb.d',
  // iconv's charset modules; glibc converts UTF-8, ASCII and Latin-1 without them.
  'usr/lib/x86_64-linux-gnu/gconv',
  'var/lib/apt/lists',
  'var/cache/apt',
  'var/cache/debconf/config.dat-old',
  'var/cache/debconf/templates.dat-old',
  'var/log/bootstrap.log',
  'var/log/dpkg.log',
  'var/log/alternatives.log',
  'var/log/apt',
];
