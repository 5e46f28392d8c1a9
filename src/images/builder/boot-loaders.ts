/**
 * GRUB for both firmware kinds, installed by the image's own GRUB inside the chroot (so the
 * installed boot code matches the modules and the version the deployed system will later
 * reinstall), sharing one /boot/grub/grub.cfg:
 *
 * - BIOS: boot.img in the protective MBR, core.img embedded in the BIOS boot partition; it
 *   finds /boot/grub on partition 3 of the same disk.
 * - UEFI: installed at the removable-media path \EFI\BOOT\BOOTX64.EFI, which firmware boots
 *   without an NVRAM entry (none is written: the image is built far from the machine that
 *   boots it). That file is Microsoft-signed shim, which loads Debian-signed GRUB next to it,
 *   so the image also boots with Secure Boot on; a small grub.cfg beside them finds the root
 *   file system by UUID and hands over to /boot/grub/grub.cfg.
 *
 * Debian's grub-cloud-amd64 is what makes this last: once /etc/grub.d/enable_cloud exists,
 * every GRUB or shim upgrade on the deployed machine reinstalls both boot loaders.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import type { Chroot } from './chroot.js';
import { copyIntoFat, PARTITIONS, type LoopDisk } from './disk.js';
import { unmount } from '../../build/scratch.js';
import { runProcess } from './process.js';
import type { Teardown } from './teardown.js';

export interface BootLoaderCheck {
  rootFsUuid: string;
}

export async function installBootLoaders(
  chroot: Chroot,
  disk: LoopDisk,
  check: BootLoaderCheck,
  teardown: Teardown,
  ctx: { log: (line: string) => void; signal?: AbortSignal | undefined },
): Promise<void> {
  const { root } = chroot;
  ctx.log('installing GRUB for BIOS');
  await chroot.run(['grub-install', '--target=i386-pc', '--boot-directory=/boot', disk.device]);

  ctx.log('installing shim and GRUB for UEFI at \\EFI\\BOOT\\BOOTX64.EFI');
  const espDevice = disk.partition(PARTITIONS.esp.number);
  const staging = join(root, 'boot/efi');
  // NOTE: grub-install only accepts an --efi-directory whose mount source is a FAT file
  // system, and finds that source in /proc/self/mountinfo. Build hosts may have no vfat
  // driver, so the ESP is not mounted: a tmpfs that names the ESP as its source stands in for
  // it, and its content is then copied into the FAT file system with mtools.
  await runProcess('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', espDevice, staging], ctx);
  const stagingMount = teardown.hold(`unmount ${staging}`, () => unmount(staging, ctx.log));
  await chroot.run([
    'grub-install',
    '--target=x86_64-efi',
    '--efi-directory=/boot/efi',
    '--boot-directory=/boot',
    '--removable',
    '--no-nvram',
    '--uefi-secure-boot',
  ]);
  await copyIntoFat(espDevice, staging, ctx);
  await stagingMount.release();

  // From now on GRUB upgrades on the deployed machine reinstall both boot loaders.
  writeFileSync(join(root, 'etc/grub.d/enable_cloud'), '');
  ctx.log('writing /boot/grub/grub.cfg');
  await chroot.run(['update-grub']);
  checkGrubConfig(readFileSync(join(root, 'boot/grub/grub.cfg'), 'utf8'), check);
  if (!existsSync(join(root, 'boot/grub/i386-pc/core.img'))) throw new PlinthError('internal', 'GRUB for BIOS left no core.img');
}

/** The first menu entry must boot the root file system by UUID with the serial console. */
export function checkGrubConfig(grubCfg: string, check: BootLoaderCheck): void {
  const linux = /^\s*linux\s+(\S+)\s+(.*)$/m.exec(grubCfg);
  if (!linux) throw new PlinthError('internal', 'grub.cfg has no linux line');
  const commandLine = linux[2]!;
  if (!commandLine.includes(`root=UUID=${check.rootFsUuid}`)) {
    throw new PlinthError('internal', `grub.cfg does not boot root=UUID=${check.rootFsUuid}: ${commandLine}`);
  }
  if (!/console=ttyS0/.test(commandLine)) throw new PlinthError('internal', `grub.cfg has no serial console: ${commandLine}`);
}

/** The kernel command line of the default entry, as the manifest records it. */
export function defaultCommandLine(grubCfg: string): string {
  return (/^\s*linux\s+\S+\s+(.*)$/m.exec(grubCfg)?.[1] ?? '').trim().replace(/\s+/g, ' ');
}
