import { describe, expect, it } from 'vitest';
import { compareDebianVersions, dependencyNames, findPackage, installedPackages, parseStanzas } from './debian-index.js';

const index = `Package: linux-image-amd64
Version: 6.1.170-1
Depends: linux-image-6.1.0-45-amd64 (= 6.1.170-1)

Package: linux-image-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel.

Package: linux-image-6.1.0-50-amd64
Version: 6.1.176-1
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
Filename: pool/main/l/linux-signed-amd64/linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb
SHA256: 7b5597492a0a65aee61985a492e6bcc3f2cde830072a0e3b3d8c7e1b90279bd3
`;

describe('Debian indexes', () => {
  it('parses stanzas with continuation lines', () => {
    const stanzas = parseStanzas(index);
    expect(stanzas).toHaveLength(3);
    expect(stanzas[1]!.get('Description')).toBe('Linux for 64-bit PCs (meta-package)\nThis package depends on the latest Linux kernel.');
  });

  it('finds the newest stanza of a package and the names it depends on', () => {
    const meta = findPackage(index, 'linux-image-amd64');
    expect(meta?.get('Version')).toBe('6.1.176-1');
    expect(dependencyNames(meta?.get('Depends'))).toEqual(['linux-image-6.1.0-50-amd64']);
    expect(dependencyNames(findPackage(index, 'linux-image-6.1.0-50-amd64')?.get('Depends'))).toEqual(['kmod', 'linux-base', 'initramfs-tools']);
    expect(findPackage(index, 'linux-image')).toBeNull();
  });

  it('lists installed packages from dpkg status', () => {
    const status = `Package: udev\nStatus: install ok installed\nVersion: 252.39-1~deb12u2\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b8\n`;
    expect(installedPackages(status)).toEqual({ bash: '5.2.15-2+b8', udev: '252.39-1~deb12u2' });
  });

  it('orders versions as dpkg does', () => {
    const ascending = ['1.0~rc1', '1.0', '1.0-1', '1.0-1+b1', '1.0a', '1.2', '1.10', '1:0.1'];
    for (let i = 1; i < ascending.length; i++) {
      expect(compareDebianVersions(ascending[i - 1]!, ascending[i]!), `${ascending[i - 1]} < ${ascending[i]}`).toBeLessThan(0);
      expect(compareDebianVersions(ascending[i]!, ascending[i - 1]!)).toBeGreaterThan(0);
    }
    expect(compareDebianVersions('6.1.176-1', '6.1.176-1')).toBe(0);
  });
});
