import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { attachLoopDisk } from '../../src/images/builder/disk.js';
import { Teardown } from '../../src/images/builder/teardown.js';
import { ensureDebianPackages, hasCommand, hasPackageFile } from './peers/debian-packages.js';

/**
 * A whole-disk image with a real, tiny operating system, for end-to-end deploys that must see
 * the installed OS boot without spending minutes writing and booting a Debian system under
 * emulation: an MBR (syslinux's) and one bootable ext4 partition holding extlinux, the
 * installer's own Debian kernel and an initramfs of static busybox plus the few modules it needs
 * (virtio, ext4, taken from the installer's base layer so that they match the kernel).
 *
 * Its /init does what an installed system's first boot does for Plinth, and nothing else: it
 * mounts its root file system, reads the NoCloud seed the deploy wrote there
 * (`var/lib/cloud/seed/nocloud/user-data`: the report script's URL and callback token), takes an
 * address by DHCP, reports `first-boot` to the controller, prints what happened on the serial
 * console (`plinth-tiny-os: …` lines) and powers the machine off.
 */
export interface TinyOsImage {
  path: string;
  bytes: Buffer;
}

const MiB = 2 ** 20;
/** The modules /init loads (their dependencies first, from modules.dep). */
const WANTED = ['virtio_pci', 'virtio_blk', 'virtio_net', 'crc32c_generic', 'ext4'];

const INIT = (modules: string[]) => `#!/bin/sh
export PATH=/bin
say() { echo "plinth-tiny-os: $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
${modules.map((m) => `insmod /${m} || say "insmod ${m} failed"`).join('\n')}
say "booted uuid=$(cat /sys/class/dmi/id/product_uuid)"
i=0
while [ ! -b /dev/vda1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
mount -t ext4 -o ro /dev/vda1 /mnt || say "mount /dev/vda1 failed"
say "root $(cat /mnt/etc/tiny-os-release)"
seed=/mnt/var/lib/cloud/seed/nocloud/user-data
url=$(sed -n "s/^ *url='\\(.*\\)'$/\\1/p" "$seed")
token=$(sed -n "s/^ *token='\\(.*\\)'$/\\1/p" "$seed")
[ -n "$url" ] && [ -n "$token" ] || say "no report URL or token in $seed"
ip link set eth0 up
udhcpc -i eth0 -n -q -t 20 -s /bin/udhcpc-script || say "no DHCP answer"
n=0
until wget -q -O /tmp/answer --header "Authorization: Bearer $token" --header 'Content-Type: application/json' --post-data '{"event":"first-boot","source":"plinth-tiny-os"}' "$url"; do
  n=$((n + 1))
  [ $n -ge 30 ] && break
  sleep 2
done
say "reported $(cat /tmp/answer 2>/dev/null)"
umount /mnt
poweroff -f
`;

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew) ifconfig "$interface" "$ip" netmask "$subnet" ;;
esac
`;

/** The modules' paths (relative to the kernel's module directory), dependencies first. */
function moduleOrder(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod && rest !== undefined) deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = (name: string) => [...deps.keys()].find((p) => p.endsWith(`/${name}.ko`));
  const ordered: string[] = [];
  const visit = (path: string) => {
    if (ordered.includes(path)) return;
    // modules.dep lists every dependency, transitively, nearest last: load them from the end.
    for (const d of [...(deps.get(path) ?? [])].reverse()) visit(d);
    ordered.push(path);
  };
  for (const name of wanted) {
    const path = byName(name);
    if (!path) throw new Error(`module ${name} is not in the installer's modules.dep`);
    visit(path);
  }
  return ordered;
}

/** Builds the image from the installer's kernel and initramfs (its first archive, the base layer). */
export async function buildTinyOs(installer: { kernel: string; initrd: string }, opts: { sizeMiB?: number; release?: string } = {}): Promise<TinyOsImage> {
  ensureDebianPackages(['busybox-static', 'extlinux', 'syslinux-common', 'e2fsprogs', 'fdisk', 'cpio', 'zstd'], () =>
    ['extlinux', 'sfdisk', 'mkfs.ext4', 'cpio', 'zstd'].every(hasCommand) && hasPackageFile('/usr/lib/syslinux/mbr/mbr.bin') && hasPackageFile('/usr/share/doc/busybox-static'),
  );
  const dir = mkdtempSync(join(tmpdir(), 'plinth-tiny-os-'));
  try {
    // The kernel's modules, from the base layer (the initramfs's first archive: cpio stops at its trailer).
    const base = join(dir, 'base');
    mkdirSync(base);
    const unpack = (patterns: string[]) => execFileSync('sh', ['-c', `zstd -dc "$0" | cpio -id --quiet ${patterns.map((p) => `'${p}'`).join(' ')}`, installer.initrd], { cwd: base, stdio: 'pipe' });
    unpack(['usr/lib/modules/*/modules.dep']);
    const release = execFileSync('ls', [join(base, 'usr/lib/modules')]).toString().trim();
    const moduleDir = `usr/lib/modules/${release}`;
    const modules = moduleOrder(readFileSync(join(base, moduleDir, 'modules.dep'), 'utf8'), WANTED);
    unpack(modules.map((m) => `${moduleDir}/${m}`));

    // The initramfs: busybox, /init, the modules at the top.
    const rd = join(dir, 'initramfs');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'mnt', 'tmp']) mkdirSync(join(rd, d), { recursive: true });
    copyFileSync('/bin/busybox', join(rd, 'bin/busybox'));
    chmodSync(join(rd, 'bin/busybox'), 0o755);
    for (const applet of ['sh', 'mount', 'umount', 'insmod', 'cat', 'sleep', 'sed', 'ip', 'udhcpc', 'ifconfig', 'wget', 'poweroff', 'echo']) {
      execFileSync('ln', ['-s', 'busybox', join(rd, 'bin', applet)]);
    }
    const flat = modules.map((m) => m.split('/').pop()!);
    modules.forEach((m, i) => copyFileSync(join(base, moduleDir, m), join(rd, flat[i]!)));
    writeFileSync(join(rd, 'init'), INIT(flat), { mode: 0o755 });
    writeFileSync(join(rd, 'bin/udhcpc-script'), UDHCPC_SCRIPT, { mode: 0o755 });
    const initrd = join(dir, 'initrd.img');
    execFileSync('sh', ['-c', 'find . | cpio -o -H newc --quiet | gzip -1 > "$0"', initrd], { cwd: rd });

    // The root file system: kernel, initramfs, extlinux. ext3: extlinux 6.04 fails to read the
    // kernel from an ext4 made by e2fsprogs 1.47 ("I/O error"), even without 64bit and metadata_csum.
    const root = join(dir, 'root');
    mkdirSync(join(root, 'boot/extlinux'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    mkdirSync(join(root, 'var/lib/cloud/seed'), { recursive: true });
    copyFileSync(installer.kernel, join(root, 'boot/vmlinuz'));
    copyFileSync(initrd, join(root, 'boot/initrd.img'));
    writeFileSync(join(root, 'etc/tiny-os-release'), `${opts.release ?? 'tiny-os 1'}\n`);
    writeFileSync(
      join(root, 'boot/extlinux/extlinux.conf'),
      'DEFAULT tiny\nPROMPT 0\nTIMEOUT 0\nLABEL tiny\n  LINUX /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND console=ttyS0 panic=-1\n',
    );
    const sizeMiB = opts.sizeMiB ?? 40;
    const fs = join(dir, 'root.ext4');
    execFileSync('mkfs.ext4', ['-q', '-F', '-t', 'ext3', '-L', 'tiny-root', '-d', root, fs, `${sizeMiB - 1}M`], { stdio: 'pipe' });
    // The disk: an MBR with syslinux's boot code, one active partition from 1 MiB. extlinux is
    // installed through a partitioned loop device, so that it records where the partition starts.
    const path = join(dirname(dir), `${dir.split('/').pop()}.raw`);
    writeFileSync(path, '');
    truncateSync(path, sizeMiB * MiB);
    execFileSync('sfdisk', ['--quiet', path], { input: 'label: dos\nstart=2048, type=83, bootable\n', stdio: ['pipe', 'pipe', 'pipe'] });
    execFileSync('dd', ['if=/usr/lib/syslinux/mbr/mbr.bin', `of=${path}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
    execFileSync('dd', [`if=${fs}`, `of=${path}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
    // The image builder's loop attach: it waits for the partition's node (partx where --partscan makes none).
    const teardown = new Teardown(() => undefined);
    try {
      const disk = await attachLoopDisk(path, 1, teardown, { log: () => undefined });
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      execFileSync('mount', [disk.partition(1), mnt]);
      try {
        execFileSync('extlinux', ['--install', join(mnt, 'boot/extlinux')], { stdio: 'pipe' });
      } finally {
        execFileSync('umount', [mnt]);
      }
    } finally {
      await teardown.unwind();
    }
    return { path, bytes: readFileSync(path) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
