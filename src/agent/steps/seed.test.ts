import { mkdtempSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { writeNoCloudSeed } from './seed.js';
import { buildTestImage, copyOnto, LoopDevices, MiB, mountpointsOf, must, sh, type TestImage } from './test-fixtures.js';

const seed = {
  userData: '#cloud-config\nusers:\n  - name: ops\n    ssh_authorized_keys: [ssh-ed25519 AAAA test]\n',
  metaData: 'instance-id: run-0123\nlocal-hostname: node-7\n',
  networkConfig: 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n',
};

const plinthMounts = () => readdirSync(tmpdir()).filter((d) => d.startsWith('plinth-mnt-'));

/** The seed lands in the root filesystem of a real image on a loop device. */
describe('writeNoCloudSeed', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  beforeAll(async () => {
    image = await buildTestImage(loops);
  });
  afterAll(async () => loops.detachAll());

  it('writes user-data, meta-data and network-config (root, 0600) into the root filesystem and unmounts it', async () => {
    const { device } = await loops.attach(48 * MiB);
    await copyOnto(loops, image.path, device);
    const mountsBefore = plinthMounts();
    const result = await writeNoCloudSeed(device, seed, { log: () => undefined });
    expect(result).toEqual({
      partition: `${device}p3`,
      filesystem: 'ext4',
      directory: '/var/lib/cloud/seed/nocloud',
      files: [
        { name: 'user-data', bytes: Buffer.byteLength(seed.userData) },
        { name: 'meta-data', bytes: Buffer.byteLength(seed.metaData) },
        { name: 'network-config', bytes: Buffer.byteLength(seed.networkConfig) },
      ],
      kernelArgsFiles: [],
    });
    // Nothing of ours is left mounted, and no mount directory is left behind.
    expect(mountpointsOf(device)).toEqual([]);
    expect(plinthMounts()).toEqual(mountsBefore);

    // Look for ourselves, read-only.
    const dir = mkdtempSync(join(tmpdir(), 'seed-check-'));
    await must('mount', ['-o', 'ro', '-t', 'ext4', `${device}p3`, dir]);
    try {
      const seedDir = join(dir, 'var/lib/cloud/seed/nocloud');
      expect(readdirSync(seedDir).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
      for (const [file, content] of [['user-data', seed.userData], ['meta-data', seed.metaData], ['network-config', seed.networkConfig]] as const) {
        expect(readFileSync(join(seedDir, file), 'utf8')).toBe(content);
        const st = statSync(join(seedDir, file));
        expect(st.mode & 0o7777).toBe(0o600);
        expect([st.uid, st.gid]).toEqual([0, 0]);
        expect(st.isFile()).toBe(true);
      }
      expect(statSync(seedDir).mode & 0o777).toBe(0o755);
      // The image's own files are untouched.
      expect(readFileSync(join(dir, 'hello.txt'), 'utf8')).toBe(image.files['hello.txt']);
    } finally {
      await must('umount', [dir]);
      rmdirSync(dir);
    }
    // The filesystem is clean after our mount and unmount.
    expect((await sh('e2fsck', ['-f', '-n', `${device}p3`])).code).toBe(0);
  });

  it('replaces an earlier seed', async () => {
    const { device } = await loops.attach(48 * MiB);
    await copyOnto(loops, image.path, device);
    await writeNoCloudSeed(device, { ...seed, metaData: 'instance-id: old\n' }, { log: () => undefined });
    await writeNoCloudSeed(device, seed, { log: () => undefined });
    expect(await must('debugfs', ['-R', 'cat /var/lib/cloud/seed/nocloud/meta-data', `${device}p3`])).toBe(seed.metaData);
  });

  it("adds kernelArgs to the installed system's boot loader in the same mount", async () => {
    const { device } = await loops.attach(48 * MiB);
    await copyOnto(loops, image.path, device);
    const result = await writeNoCloudSeed(device, seed, { log: () => undefined, kernelArgs: 'intel_iommu=on nomodeset' });
    expect(result.kernelArgsFiles).toEqual(['/etc/default/grub', '/boot/grub/grub.cfg']);
    expect(await must('debugfs', ['-R', 'cat /boot/grub/grub.cfg', `${device}p3`])).toContain('root=UUID=0000 ro console=tty0 console=ttyS0,115200n8 intel_iommu=on nomodeset\n');
    expect(await must('debugfs', ['-R', 'cat /etc/default/grub', `${device}p3`])).toContain('GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 intel_iommu=on nomodeset"\n');
    expect(mountpointsOf(device)).toEqual([]);
  });

  it('fails with code image when the disk holds no Linux root filesystem', async () => {
    const { device, name } = await loops.attach(48 * MiB);
    await must('sgdisk', ['--new=1:2048:+8M', '--typecode=1:EF00', device]);
    await must('partx', ['--update', device]).catch(() => undefined);
    await must('mkfs.vfat', ['-n', 'ESP', `${device}p1`]);
    const error = (await writeNoCloudSeed(device, seed, { log: () => undefined }).catch((e: unknown) => e)) as StepError;
    expect(error).toBeInstanceOf(StepError);
    expect(error.code).toBe('image');
    expect(error.message).toBe(`${name}: the image has no root filesystem (no "plinth-root" label, no Linux filesystem) among its partitions: ${name}p1: vfat "ESP"`);
    expect(mountpointsOf(device)).toEqual([]);
  });
});
