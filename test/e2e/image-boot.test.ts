/**
 * End to end: build the Debian 12 image once, then boot copies of it in QEMU (TCG) on BIOS,
 * on UEFI, and on UEFI with Secure Boot enforced, each with a NoCloud seed. From the serial
 * console: the installed kernel booted through GRUB, cloud-init ran and set the hostname.
 * Through SSH (a host-forwarded port, a key made here): the hostname, and the first-boot facts
 * an image promises (fresh machine-id, root grown to the disk, locked root, no APT lists).
 *
 * The image build takes minutes when its cache is cold. The cache survives the run in
 * PLINTH_IMAGE_TEST_CACHE (default /tmp/plinth-image-builder-cache), so later runs reuse the
 * downloaded packages and the base system snapshot. PLINTH_IMAGE_TEST_KEEP=1 keeps the work
 * directory (image, serial logs, build log) for inspection.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuiltImage } from '../../src/images/builder/index.js';
import { ensureHostTools } from '../../src/build/host-tools.js';
import { outputOf } from '../../src/build/process.js';
import { SEED_HOST_REQUIREMENTS } from '../../src/images/builder/host-tools.js';
import { TOOL_OUTPUT_PREFIX } from '../../src/images/builder/process.js';
import { Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { makeNoCloudSeedDisk } from '../support/image-seed.js';
import { freePort, generateSshKey, ssh, sshWhenReady, type SshKey, type SshTarget } from '../support/image-ssh.js';
import { whenBuildLockFree } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

const CACHE_DIR = process.env.PLINTH_IMAGE_TEST_CACHE ?? '/tmp/plinth-image-builder-cache';
const KEEP = process.env.PLINTH_IMAGE_TEST_KEEP === '1';
const BUILD_TIMEOUT_MS = 60 * 60_000;
const BOOT_TIMEOUT_MS = 15 * 60_000;
const GiB = 2 ** 30;
const USER = 'lab';
const MARKER = 'PLINTH-IMAGE-BOOT-MARKER';

type BootMode = 'bios' | 'uefi' | 'uefi-secure-boot';

const SECURE_BOOT_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
/** OVMF variables with Microsoft's keys enrolled: they trust the shim in the image. */
const SECURE_BOOT_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const seconds = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe('plinth image build: a Debian 12 image that boots on BIOS and UEFI', () => {
  let work: string;
  let image: BuiltImage;
  let key: SshKey;
  const vms: Vm[] = [];
  const machineIds = new Map<BootMode, string>();

  beforeAll(async () => {
    work = mkdtempSync('/tmp/plinth-image-boot-');
    const buildLog = join(work, 'build.log');
    const postInstall = join(work, 'post-install.sh');
    writeFileSync(postInstall, '#!/bin/sh\nset -e\necho "post-install ran in $PLINTH_IMAGE_NAME" > /etc/image-post-install\n');
    const started = Date.now();
    try {
      image = await whenBuildLockFree(() => buildImage({
        name: 'debian-12-e2e',
        outputDir: join(work, 'images'),
        cacheDir: CACHE_DIR,
        postInstallScript: postInstall,
        log: (line) => {
          appendFileSync(buildLog, line + '\n');
          if (!line.startsWith(TOOL_OUTPUT_PREFIX)) console.log(line);
        },
      }));
    } catch (e) {
      console.error(outputOf(e).join('\n'));
      throw e;
    }
    console.log(
      `image built in ${seconds(Date.now() - started)} (base snapshot ${image.manifest.inputs.baseSnapshotReused ? 'reused' : 'built'}): ` +
        `${image.sizeBytes} bytes apparent, ${image.manifest.allocatedBytes} allocated`,
    );
    await ensureHostTools(SEED_HOST_REQUIREMENTS, { log: console.log });
    key = await generateSshKey(work);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const vm of vms) await vm.stop();
    if (work && !KEEP) rmSync(work, { recursive: true, force: true });
  });

  it('describes the image in a manifest beside it', () => {
    const m = image.manifest;
    expect(image.format).toBe('raw');
    expect(image.firmware).toEqual(['bios', 'uefi']);
    expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.distribution).toMatchObject({ id: 'debian', release: '12', suite: 'bookworm' });
    expect(m.partitionTable.partitions.map((p) => [p.number, p.typeCode, p.filesystem])).toEqual([
      [1, 'EF02', 'none'],
      [2, 'EF00', 'vfat'],
      [3, '8304', 'ext4'],
    ]);
    const root = m.partitionTable.partitions[2]!;
    expect(root.startBytes + root.sizeBytes).toBeGreaterThan(m.sizeBytes - 1024 * 1024);
    expect(m.allocatedBytes).toBeLessThan(m.sizeBytes / 2);
    const names = m.packages.map((p) => p.name);
    for (const needed of ['cloud-init', 'openssh-server', 'cloud-guest-utils', 'sudo', 'ifupdown', 'grub-cloud-amd64', 'shim-signed']) {
      expect(names).toContain(needed);
    }
    expect(m.kernel.commandLine).toContain(`root=UUID=${m.rootFilesystem.uuid}`);
    expect(m.kernel.commandLine).toContain('console=ttyS0');
  });

  // Plain UEFI is not booted here: Secure Boot is the stricter UEFI path (shim, signed GRUB and
  // kernel), and deploy.test.ts boots this image on plain UEFI after writing it to a VM's disk.
  const modes: BootMode[] = ['bios', 'uefi-secure-boot'];
  for (const mode of modes) {
    it(
      `boots a copy on ${mode}: installed kernel, cloud-init, hostname, SSH`,
      async () => {
        const dir = join(work, mode);
        mkdirSync(dir);
        const hostname = `plinth-${mode}`;
        const mac = `52:54:00:5e:00:0${modes.indexOf(mode) + 1}`;
        // A copy-on-write overlay larger than the image: cloud-init must grow the root into it.
        const overlay = join(dir, 'disk.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.path, '-F', 'raw', overlay, '8G']);
        const seed = join(dir, 'seed.img');
        await makeNoCloudSeedDisk(seed, {
          instanceId: `iid-${hostname}-${Date.now()}`,
          hostname,
          userData: {
            users: [{ name: USER, shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: true, ssh_authorized_keys: [key.publicKey] }],
            runcmd: [['sh', '-c', `echo "${MARKER} host=$(hostname)" > /dev/ttyS0`]],
          },
          networkConfig: { version: 2, ethernets: { lan0: { match: { macaddress: mac }, 'set-name': 'lan0', dhcp4: true } } },
        });
        const port = await freePort();
        const spec: VmSpec = {
          name: `image-${mode}`,
          memoryMiB: 1024,
          firmware: mode === 'bios' ? 'bios' : 'uefi',
          bootOrder: ['disk'],
          disks: [
            { path: overlay, format: 'qcow2' },
            { path: seed, format: 'raw' },
          ],
          nics: [{ mac, hostForwards: [{ hostPort: port, guestPort: 22 }] }],
        };
        if (mode === 'uefi-secure-boot') {
          // NOTE: the launcher knows only plain OVMF. Declared as a BIOS VM (so it adds no
          // firmware of its own), this one gets Secure Boot OVMF, which needs SMM and
          // secure flash; QEMU merges the second -machine with the launcher's.
          const vars = join(dir, 'OVMF_VARS.secure-boot.fd');
          copyFileSync(SECURE_BOOT_VARS, vars);
          spec.firmware = 'bios';
          spec.extraArgs = [
            '-machine', 'smm=on',
            '-global', 'driver=cfi.pflash01,property=secure,value=on',
            '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${SECURE_BOOT_CODE}`,
            '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
          ];
        }
        const vm = new Vm(spec, { dir, launcher: TEST_QEMU_LAUNCHER });
        vms.push(vm);
        const started = Date.now();
        await vm.start();
        try {
          // Serial console: cloud-init's runcmd reports the hostname it set, cloud-init's
          // last stage finishes, and getty greets with that hostname.
          const marker = await vm.waitForSerial(new RegExp(`${MARKER} host=(\\S+)`), BOOT_TIMEOUT_MS);
          const markerAt = Date.now() - started;
          await vm.waitForSerial(/Cloud-init v\. \S+ finished/, 5 * 60_000);
          await vm.waitForSerial(new RegExp(`${escapeRegExp(hostname)} login:`), 5 * 60_000);
          const loginAt = Date.now() - started;
          const target: SshTarget = { key, port, user: USER };
          const sshHostname = await sshWhenReady(target, 'hostname', 5 * 60_000);
          const sshAt = Date.now() - started;

          // GRUB booted the image's own kernel, by the firmware path under test. (Checked with
          // toBe(true) so that a failure does not print the whole console log.)
          const serial = vm.serialOutput();
          const kernel = image.manifest.kernel.version;
          const sawOnConsole = (what: string | RegExp) => (typeof what === 'string' ? serial.includes(what) : what.test(serial));
          expect(marker[1]).toBe(hostname);
          expect(sawOnConsole(`BOOT_IMAGE=/boot/vmlinuz-${kernel}`), 'GRUB booted the installed kernel').toBe(true);
          expect(sawOnConsole(new RegExp(`Linux version ${escapeRegExp(kernel)} `)), 'installed kernel version').toBe(true);
          expect(sawOnConsole(/efi: EFI v/), 'booted through UEFI').toBe(mode !== 'bios');
          if (mode === 'uefi-secure-boot') expect(sawOnConsole('Secure boot enabled'), 'Secure Boot enforced').toBe(true);

          expect(sshHostname.stdout.trim()).toBe(hostname);
          const facts = await ssh(
            target,
            [
              // A busy host finishes the first boot late: wait for it (cloud-init, the mounts) before reading it.
              'cloud-init status --wait >/dev/null 2>&1; systemctl is-system-running --wait >/dev/null 2>&1',
              'cloud-init status | sed -n "s/^status: //p"',
              'cat /etc/machine-id',
              'findmnt --bytes --noheadings --output SIZE /',
              'sudo -n passwd --status root | cut -d" " -f2',
              'ls -A /var/lib/apt/lists | tr "\\n" " "; echo',
              'cat /etc/image-post-install',
              'test -d /sys/firmware/efi && echo uefi || echo bios',
              'findmnt --noheadings --output FSTYPE /boot/efi',
            ].join('; '),
            10 * 60_000,
          );
          expect(facts.exitCode, `${facts.stderr}\n${facts.stdout}`).toBe(0);
          const [status, machineId, rootBytes, rootPasswordState, aptLists, postInstall, firmware, espType] = facts.stdout.split('\n');
          expect(status).toBe('done');
          expect(machineId).toMatch(/^[0-9a-f]{32}$/);
          expect([...machineIds.values()]).not.toContain(machineId);
          machineIds.set(mode, machineId!);
          expect(Number(rootBytes)).toBeGreaterThan(7 * GiB);
          expect(rootPasswordState).toBe('L');
          expect(aptLists!.trim().split(' ').sort()).toEqual(['lock', 'partial']);
          expect(postInstall).toBe('post-install ran in debian-12-e2e');
          expect(firmware).toBe(mode === 'bios' ? 'bios' : 'uefi');
          expect(espType, 'ESP mounted at /boot/efi').toBe('vfat');

          console.log(
            `${mode}: cloud-init marker after ${seconds(markerAt)}, login prompt after ${seconds(loginAt)}, SSH after ${seconds(sshAt)} (TCG)`,
          );
        } finally {
          await vm.stop();
        }
      },
      BOOT_TIMEOUT_MS + 10 * 60_000,
    );
  }
});
