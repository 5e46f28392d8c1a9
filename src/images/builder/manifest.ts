/**
 * What the image contains, read from the image itself while it is still mounted, and the
 * manifest written beside it. Lists are sorted so that two builds of the same inputs differ
 * only where their contents do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../../core/errors.js';
import { defaultCommandLine } from './boot-loaders.js';
import type { Chroot } from './chroot.js';
import type { ImageManifest, ManifestPackage } from './options.js';

export function parseDpkgQuery(output: string): ManifestPackage[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [name = '', version = '', architecture = ''] = line.split('\t');
      return { name, version, architecture };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every package installed in the chroot, by name. */
export async function installedPackages(chroot: Chroot): Promise<ManifestPackage[]> {
  const dpkg = await chroot.run(['dpkg-query', '--show', '--showformat=${Package}\\t${Version}\\t${Architecture}\\n'], { capture: true, log: () => undefined });
  return parseDpkgQuery(dpkg.stdout);
}

/** The newest kernel installed, the one GRUB boots by default. */
export async function newestKernel(chroot: Chroot): Promise<string> {
  const kernels = await chroot.run(['sh', '-c', 'linux-version list | linux-version sort --reverse'], { capture: true, log: () => undefined });
  const version = kernels.stdout.split('\n')[0]?.trim();
  if (!version) throw new PlinthError('internal', 'no kernel installed in the image');
  return version;
}

export type ImageContents = Pick<ImageManifest, 'packages' | 'kernel' | 'bootLoaders' | 'cloudInit'> & { debianVersion: string };

export async function readImageContents(chroot: Chroot, datasources: string[]): Promise<ImageContents> {
  const { root } = chroot;
  const packages = await installedPackages(chroot);
  const versionOf = (name: string): string => packages.find((p) => p.name === name)?.version ?? 'not installed';

  const kernelVersion = await newestKernel(chroot);
  const kernelPackage = `linux-image-${kernelVersion}`;

  return {
    debianVersion: readFileSync(join(root, 'etc/debian_version'), 'utf8').trim(),
    packages,
    kernel: {
      version: kernelVersion,
      package: kernelPackage,
      packageVersion: versionOf(kernelPackage),
      commandLine: defaultCommandLine(readFileSync(join(root, 'boot/grub/grub.cfg'), 'utf8')),
    },
    bootLoaders: {
      bios: `GRUB ${versionOf('grub-pc-bin')} (i386-pc)`,
      uefi: `shim ${versionOf('shim-signed')} + GRUB ${versionOf('grub-efi-amd64-signed')} (x86_64-efi, signed)`,
      secureBoot: true,
    },
    cloudInit: { version: versionOf('cloud-init'), datasources },
  };
}

export const manifestJson = (manifest: ImageManifest): string => JSON.stringify(manifest, null, 2) + '\n';
