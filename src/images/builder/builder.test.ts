import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aptSources, BASE_PACKAGES, baseInputs, baseKey } from './base-system.js';
import { checkGrubConfig, defaultCommandLine } from './boot-loaders.js';
import { imageBuildCommand, imageBuilderPaths, treeBuildCommand } from './command.js';
import { TREE_PACKAGES, treeFileName } from './tree.js';
import { CLOUD_INIT_CONFIG, fstab, TREE_FSTAB } from './configure.js';
import { parsePartitionTable, sgdiskArguments, newDiskIdentity } from './disk.js';
import { missingTools, missingToolsMessage } from '../../build/host-tools.js';
import { ownerAlive, ownerRecord } from '../../build/lock.js';
import { commandLine } from '../../build/process.js';
import { mountsUnder, parseMountPoints } from '../../build/scratch.js';
import { BUILD_HOST_REQUIREMENTS } from './host-tools.js';
import { parseDpkgQuery } from './manifest.js';
import { DEFAULT_IMAGE_SIZE, DEFAULT_MIRROR, GiB, resolveBuildOptions, type BuildImageOptions } from './options.js';
import { runProcess } from './process.js';
import { Teardown } from './teardown.js';

const base: BuildImageOptions = { name: 'debian-12', outputDir: '/tmp/out', cacheDir: '/tmp/cache', log: () => undefined };

describe('build options', () => {
  it('fills in the defaults', () => {
    const o = resolveBuildOptions(base);
    expect(o.sizeBytes).toBe(DEFAULT_IMAGE_SIZE);
    expect(o.mirror).toBe(DEFAULT_MIRROR);
    expect(o.securityMirror).toBe('http://deb.debian.org/debian-security');
    expect(o.extraPackages).toEqual([]);
    expect(o.postInstallScript).toBeNull();
  });

  it('rounds the size up to whole MiB and refuses disks too small for the base system', () => {
    expect(resolveBuildOptions({ ...base, sizeBytes: 4 * GiB + 1 }).sizeBytes).toBe(4 * GiB + 1024 * 1024);
    expect(() => resolveBuildOptions({ ...base, sizeBytes: GiB })).toThrow(/sizeBytes: at least 2 GiB/);
  });

  it('rejects names that are not file names, package names that are not Debian names, and missing scripts', () => {
    expect(() => resolveBuildOptions({ ...base, name: '../etc' })).toThrow(/name:/);
    expect(() => resolveBuildOptions({ ...base, extraPackages: ['vim; rm -rf /'] })).toThrow(/extraPackages:/);
    expect(() => resolveBuildOptions({ ...base, postInstallScript: '/nonexistent/script.sh' })).toThrow(/postInstallScript:/);
    expect(() => resolveBuildOptions({ ...base, mirror: 'ftp.debian.org' })).toThrow(/mirror:/);
  });

  it('accepts pinned and backported packages, sorted and without duplicates', () => {
    const o = resolveBuildOptions({ ...base, extraPackages: ['jq', 'htop=3.2.2-2', 'jq', 'linux-image-amd64/bookworm-backports'] });
    expect(o.extraPackages).toEqual(['htop=3.2.2-2', 'jq', 'linux-image-amd64/bookworm-backports']);
  });
});

describe('base system snapshot key', () => {
  const options = resolveBuildOptions(base);

  it('is stable for equal inputs whatever their order', () => {
    const a = baseKey(baseInputs({ ...options, extraPackages: ['jq', 'htop'] }));
    const b = baseKey(baseInputs({ ...options, extraPackages: ['htop', 'jq'] }));
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{24}$/);
  });

  it('changes with the packages and the mirrors, not with anything applied after the base system', () => {
    const plain = baseKey(baseInputs(options));
    expect(baseKey(baseInputs({ ...options, extraPackages: ['jq'] }))).not.toBe(plain);
    expect(baseKey(baseInputs({ ...options, mirror: 'http://mirror.example/debian' }))).not.toBe(plain);
    expect(baseKey(baseInputs({ ...options, securityMirror: null }))).not.toBe(plain);
    // The post-install script and the image size are not inputs of the base system.
    const script = join(mkdtempSync(join(tmpdir(), 'image-key-')), 'post.sh');
    writeFileSync(script, '#!/bin/sh\n');
    expect(baseKey(baseInputs(resolveBuildOptions({ ...base, postInstallScript: script, sizeBytes: 8 * GiB })))).toBe(plain);
    rmSync(join(script, '..'), { recursive: true });
  });

  it('installs the packages a cloud image needs', () => {
    for (const pkg of ['linux-image-amd64', 'grub-cloud-amd64', 'cloud-init', 'cloud-guest-utils', 'openssh-server', 'sudo', 'ifupdown']) {
      expect(BASE_PACKAGES).toContain(pkg);
    }
  });

  it('writes deb822 APT sources, with security updates unless there is no security mirror', () => {
    expect(aptSources('http://m/debian', 'http://m/debian-security')).toContain('Suites: bookworm-security');
    expect(aptSources('http://m/debian', null)).not.toContain('security');
    expect(aptSources('http://m/debian', null)).toContain('Suites: bookworm bookworm-updates');
  });
});

describe('disk layout', () => {
  it('asks sgdisk for BIOS boot, EFI system and a last root partition that takes the rest', () => {
    const args = sgdiskArguments(newDiskIdentity());
    expect(args).toContain('--new=1:2048:+1M');
    expect(args).toContain('--typecode=1:EF02');
    expect(args).toContain('--new=2:4096:+200M');
    expect(args).toContain('--typecode=2:EF00');
    expect(args).toContain('--new=3:0:0');
    expect(args).toContain('--typecode=3:8304');
  });

  it('reads the partition extents back from sgdisk --print', () => {
    const print = [
      'Number  Start (sector)    End (sector)  Size       Code  Name',
      '   1            2048            4095   1024.0 KiB  EF02  bios-boot',
      '   2            4096          413695   200.0 MiB   EF00  efi-system',
      '   3          413696         6291422   2.8 GiB     8304  root',
    ].join('\n');
    const table = parsePartitionTable(print);
    expect(table.get(1)).toEqual({ startBytes: 1024 * 1024, sizeBytes: 1024 * 1024 });
    expect(table.get(3)).toEqual({ startBytes: 413696 * 512, sizeBytes: (6291422 - 413696 + 1) * 512 });
  });

  it('mounts root and ESP by UUID in fstab', () => {
    const text = fstab({ rootFsUuid: '11111111-2222-3333-4444-555555555555', espVolumeId: 'ABCD-1234' });
    expect(text).toMatch(/^UUID=11111111-2222-3333-4444-555555555555\s+\/\s+ext4\s/m);
    expect(text).toMatch(/^UUID=ABCD-1234\s+\/boot\/efi\s+vfat\s+\S*nofail/m);
  });

  it('gives the FAT volume id in the XXXX-XXXX form blkid and fstab use', () => {
    expect(newDiskIdentity().espVolumeId).toMatch(/^[0-9A-F]{4}-[0-9A-F]{4}$/);
  });
});

describe('boot configuration', () => {
  const grubCfg = (line: string) => `menuentry 'Debian GNU/Linux' {\n\tlinux\t/boot/vmlinuz-6.1.0-56-amd64 ${line}\n}\n`;

  it('accepts a default entry booting root by UUID with a serial console', () => {
    const cfg = grubCfg('root=UUID=abc ro console=tty0 console=ttyS0,115200n8');
    expect(() => checkGrubConfig(cfg, { rootFsUuid: 'abc' })).not.toThrow();
    expect(defaultCommandLine(cfg)).toBe('root=UUID=abc ro console=tty0 console=ttyS0,115200n8');
  });

  it('refuses a grub.cfg that names the build host loop device instead of the UUID', () => {
    expect(() => checkGrubConfig(grubCfg('root=/dev/loop0p3 ro console=ttyS0'), { rootFsUuid: 'abc' })).toThrow(/root=UUID=abc/);
    expect(() => checkGrubConfig(grubCfg('root=UUID=abc ro quiet'), { rootFsUuid: 'abc' })).toThrow(/serial console/);
  });

  it('keeps the cloud-init datasource list on one line (ds-identify reads it line by line)', () => {
    expect(CLOUD_INIT_CONFIG).toMatch(/^datasource_list: \[ NoCloud, None \]$/m);
  });
});

describe('host state', () => {
  const mountinfo = [
    '22 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '90 22 7:3 / /srv/out/.image-build-x/root rw - ext4 /dev/loop3p3 rw',
    '91 90 0:5 / /srv/out/.image-build-x/root/proc rw - proc proc rw',
    '92 90 0:44 / /srv/out/.image-build-x/root/dev rw - tmpfs image-build-dev rw',
    '93 92 0:45 / /srv/out/.image-build-x/root/dev/pts rw - devpts devpts rw',
    '94 22 0:46 / /srv/out/.image-build-xy rw - tmpfs other rw',
    '95 22 0:47 / /srv/with\\040space rw - tmpfs t rw',
  ].join('\n');

  it('decodes mount points and lists those below a directory deepest first', () => {
    expect(parseMountPoints(mountinfo)).toContain('/srv/with space');
    expect(mountsUnder('/srv/out/.image-build-x', mountinfo)).toEqual([
      '/srv/out/.image-build-x/root/dev/pts',
      '/srv/out/.image-build-x/root/proc',
      '/srv/out/.image-build-x/root/dev',
      '/srv/out/.image-build-x/root',
    ]);
  });

  it('recognises its own owner record as alive and a record from another boot as dead', () => {
    expect(ownerAlive(ownerRecord())).toBe(true);
    expect(ownerAlive(`${process.pid} another-boot`)).toBe(false);
    expect(ownerAlive('garbage')).toBe(false);
  });
});

describe('host tools', () => {
  it('names the Debian packages of missing tools in one line', () => {
    const missing = missingTools(BUILD_HOST_REQUIREMENTS, (name) => (['sgdisk', 'mcopy'].includes(name) ? null : `/usr/bin/${name}`));
    expect(missingToolsMessage(missing)).toBe(
      'missing host tools: sgdisk (package gdisk), mcopy (package mtools); install with: apt-get install gdisk mtools',
    );
  });
});

describe('manifest', () => {
  it('parses dpkg-query output sorted by name', () => {
    expect(parseDpkgQuery('zstd\t1.5.4\tamd64\nbase-files\t12.4\tamd64\n')).toEqual([
      { name: 'base-files', version: '12.4', architecture: 'amd64' },
      { name: 'zstd', version: '1.5.4', architecture: 'amd64' },
    ]);
  });
});

describe('running tools', () => {
  it('quotes command lines for messages', () => {
    expect(commandLine('sh', ['-c', "echo 'hi'"])).toBe(`sh -c 'echo '\\''hi'\\'''`);
  });

  it('streams output to the log and puts the last line in the error', async () => {
    const lines: string[] = [];
    await expect(runProcess('sh', ['-c', 'echo one; echo two >&2; exit 3'], { log: (l) => lines.push(l) })).rejects.toThrow(
      /failed \(exit code 3\): two/,
    );
    expect(lines).toEqual(['  | one', '  | two']);
  });

  it('captures standard output when asked', async () => {
    const { stdout } = await runProcess('printf', ['a\\nb'], { log: () => undefined, capture: true });
    expect(stdout).toBe('a\nb');
  });

  it('kills the whole process group on abort', async () => {
    const controller = new AbortController();
    const running = runProcess('sh', ['-c', 'sleep 30 & sleep 30; wait'], { log: () => undefined, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('test')), 200);
    await expect(running).rejects.toThrow(/aborted: test/);
  });
});

describe('teardown', () => {
  const logged: string[] = [];
  afterEach(() => void logged.splice(0));

  it('releases newest first and keeps going past a failure', async () => {
    const order: string[] = [];
    const teardown = new Teardown((l) => logged.push(l));
    teardown.hold('loop', async () => void order.push('loop'));
    teardown.hold('mount', async () => {
      order.push('mount');
      throw new Error('busy');
    });
    teardown.hold('chroot', async () => void order.push('chroot'));
    expect(await teardown.unwind()).toEqual(['cleanup: mount: busy']);
    expect(order).toEqual(['chroot', 'mount', 'loop']);
  });

  it('does not release twice what was released early', async () => {
    let count = 0;
    const teardown = new Teardown((l) => logged.push(l));
    const held = teardown.hold('x', async () => void count++);
    await held.release();
    await held.release();
    await teardown.unwind();
    expect(count).toBe(1);
  });
});

describe('imageBuildCommand', () => {
  it('keeps images and the cache in the data directory', () => {
    expect(imageBuilderPaths('/var/lib/plinth')).toEqual({ outputDir: '/var/lib/plinth/images', cacheDir: '/var/lib/plinth/cache/image-builder' });
  });

  it('rejects bad input with exit code 2 and one line, before touching the host, and leaves no signal handler behind', async () => {
    const lines: string[] = [];
    const errors: string[] = [];
    const sigintListeners = process.listenerCount('SIGINT');
    const code = await imageBuildCommand({
      name: '../escape',
      dataDir: '/nonexistent/plinth',
      out: { line: (l) => lines.push(l), error: (l) => errors.push(l) },
    });
    expect(code).toBe(2);
    expect(lines).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^image build failed: name: '..\/escape' must be/);
    expect(process.listenerCount('SIGINT')).toBe(sigintListeners);
  });

  it('refuses a tree build with bad input the same way, with nothing built', async () => {
    const errors: string[] = [];
    const { code, tree } = await treeBuildCommand({
      name: 'mysql-D7-F.1.0.0',
      dataDir: '/nonexistent/plinth',
      extraPackages: ['mysql-server; reboot'],
      out: { line: (l) => errors.push(l), error: (l) => errors.push(l) },
    });
    expect(code).toBe(2);
    expect(tree).toBeNull();
    expect(errors).toEqual([expect.stringMatching(/^image build failed: extraPackages: 'mysql-server; reboot' is not a Debian package name/)]);
  });
});

describe('trees', () => {
  it('carry what tree deploys and edeploy need on the host, and no fstab of their own', () => {
    expect([...TREE_PACKAGES].sort()).toEqual(['curl', 'lvm2', 'mdadm', 'rsync']);
    expect(BASE_PACKAGES.filter((p) => TREE_PACKAGES.includes(p))).toEqual([]);
    expect(TREE_FSTAB).not.toMatch(/^UUID=/m);
    expect(treeFileName('mysql-D7-F.1.0.0')).toBe('mysql-D7-F.1.0.0.edeploy');
  });
});
