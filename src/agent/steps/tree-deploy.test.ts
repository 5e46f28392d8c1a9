import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TreeParams } from '../../protocol/agent.js';
import type { DiskLayout } from '../../protocol/disk-layout.js';
import { rsyncdConfig } from '../../trees/rsyncd.js';
import { assignDisks, fstabOf, partitionPath } from './disk-layout.js';
import { nodeExec } from './exec.js';
import type { CandidateDisk } from './root-disk.js';
import { LoopDevices, MiB, must, sh } from './test-fixtures.js';
import { configureTarget, copyTree, edeployConfOf, firstGrubEntry, initramfsRebuildReason, installBootLoader, layoutAndMount, rsyncUrlOf, writePollTimer, type TreeTarget } from './tree-deploy.js';

const exec = nodeExec();
const EDEPLOY = readFileSync(new URL('../../../bin/edeploy', import.meta.url), 'utf8');
const disk = (name: string, sizeBytes: number): CandidateDisk => ({ name, sizeBytes }) as CandidateDisk;

describe('assignDisks and partition names', () => {
  it('gives named disks by name and the others smallest first', () => {
    const disks = [disk('sda', 500), disk('sdb', 100), disk('sdc', 300)].map((d) => ({ ...d, sizeBytes: d.sizeBytes * MiB }));
    const layout: DiskLayout = {
      disks: [{ partitions: [{ id: 'a', use: 'fs', fs: 'ext4', mount: '/' }] }, { device: 'sdb', partitions: [{ id: 'b', use: 'swap' }] }, { partitions: [{ id: 'c', use: 'swap' }] }],
    };
    expect(assignDisks(layout, disks).map((d) => d.name)).toEqual(['sdc', 'sdb', 'sda']);
    expect(() => assignDisks({ disks: [{ device: 'vdz', partitions: [{ id: 'a', use: 'swap' }] }] }, disks)).toThrow(/diskLayout.disks\[0\].device: this machine has no disk vdz/);
    expect(() => assignDisks({ disks: [{ partitions: [{ id: 'a', sizeMiB: 1000, use: 'swap' }] }] }, disks)).toThrow(/smaller than its partitions/);
    expect([partitionPath('/dev/vda', 2), partitionPath('/dev/nvme0n1', 1), partitionPath('/dev/loop3', 1)]).toEqual(['/dev/vda2', '/dev/nvme0n1p1', '/dev/loop3p1']);
  });

  it("reads the kernel, initrd and command line GRUB would boot from the installed grub.cfg", () => {
    const cfg = "menuentry 'Debian' {\n\tlinux\t/boot/vmlinuz-6.1.0-28-amd64 root=UUID=abc ro  quiet\n\tinitrd\t/boot/initrd.img-6.1.0-28-amd64\n}\nmenuentry 'other' {\n\tlinux /x\n}\n";
    expect(firstGrubEntry(cfg)).toEqual({ kernel: '/boot/vmlinuz-6.1.0-28-amd64', initrd: '/boot/initrd.img-6.1.0-28-amd64', cmdline: 'root=UUID=abc ro  quiet' });
    expect(firstGrubEntry('set default=0\n')).toBeNull();
  });
});

describe("keeping the tree's initramfs", () => {
  const target = (files: string[], arrays: boolean, lvm = false): TreeTarget => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-initramfs-'));
    for (const f of files) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), '');
    }
    const root = { id: 'root', path: arrays ? '/dev/md/root' : '/dev/vda3', use: 'fs' };
    return {
      dir,
      unmount: async () => undefined,
      applied: { disks: [], devices: [root, ...(lvm ? [{ id: 'pv', path: '/dev/vda4', use: 'lvm' }] : [])], biosBootDisks: [], efiMounts: [], mdadmArrays: arrays ? ['ARRAY /dev/md/root UUID=x'] : [], root },
    };
  };
  const initrd = 'boot/initrd.img-6.1.0-28-amd64';
  const mdadmHook = 'usr/share/initramfs-tools/hooks/mdadm';
  const withMdadm = async () => 'usr/sbin/mdadm\netc/mdadm/mdadm.conf\n';

  it('keeps it when it has what the layout needs, and says why it must be rebuilt otherwise', async () => {
    const listed: string[] = [];
    const list = async (f: string) => (listed.push(f), withMdadm());
    expect(await initramfsRebuildReason(target([initrd], false), false, list)).toBeNull();
    expect(listed).toEqual([]); // nothing to look for without arrays or LVM
    expect(await initramfsRebuildReason(target([initrd, mdadmHook], true), false, list)).toBeNull();
    expect(listed).toEqual(['/boot/initrd.img-6.1.0-28-amd64']);
    expect(await initramfsRebuildReason(target([mdadmHook], true), false, list)).toBe('the tree has no initramfs in /boot');
    expect(await initramfsRebuildReason(target([initrd, mdadmHook], true), true, list)).toMatch(/named arrays of the system it was made on/);
    expect(await initramfsRebuildReason(target([initrd, mdadmHook], true), false, async () => 'usr/bin/busybox\n')).toBe('initrd.img-6.1.0-28-amd64 was made without mdadm');
    expect(await initramfsRebuildReason(target([initrd, mdadmHook, 'usr/share/initramfs-tools/hooks/lvm2'], true, true), false, list)).toBe('initrd.img-6.1.0-28-amd64 was made without lvm2');
  });

  it('refuses a layout the tree has no tools for', async () => {
    await expect(initramfsRebuildReason(target([initrd], true), false, withMdadm)).rejects.toThrow(/has RAID arrays and the tree has no mdadm/);
    await expect(initramfsRebuildReason(target([initrd, mdadmHook], true, true), false, withMdadm)).rejects.toThrow(/has LVM volume groups and the tree has no lvm2/);
  });
});

/**
 * A tree deploy's disk work on two loop devices with the real tools (sgdisk, mkfs, mount,
 * rsync against Plinth's rsyncd.conf, curl and tar against an HTTP tarball). Arrays need the
 * md driver and EFI partitions vfat, which a container's kernel may not have: those are
 * proven on a VM (test/e2e/tree-deploy.test.ts).
 */
describe('tree deploy on loop devices', () => {
  const loops = new LoopDevices();
  const work = mkdtempSync(join(tmpdir(), 'plinth-tree-'));
  const installDir = join(work, 'install');
  const treeDir = join(installDir, 'D7-F.1.0.0', 'mysql');
  let daemon: ChildProcess;
  let http: Server;
  let rsyncPort = 0;
  let httpUrl = '';
  let disks: CandidateDisk[] = [];
  let target: TreeTarget | null = null;

  const tree = (over: Partial<TreeParams> = {}): TreeParams => ({
    role: 'mysql',
    version: 'D7-F.1.0.0',
    tarballUrl: '/install/mysql-D7-F.1.0.0.edeploy',
    profile: 'db',
    edeployScript: EDEPLOY,
    onSuccess: 'reboot',
    diskLayout: { disks: [] } as unknown as DiskLayout,
    ...over,
  });

  beforeAll(async () => {
    mkdirSync(join(treeDir, 'etc/mysql'), { recursive: true });
    mkdirSync(join(treeDir, 'usr/bin'), { recursive: true });
    writeFileSync(join(treeDir, 'etc/mysql/my.cnf'), '[mysqld]\nport = 3306\n');
    writeFileSync(join(treeDir, 'usr/bin/hello'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
    mkdirSync(join(work, 'metadata'));
    rsyncPort = 20000 + (process.pid % 20000);
    const conf = join(work, 'rsyncd.conf');
    writeFileSync(conf, rsyncdConfig({ installDir, metadataDir: join(work, 'metadata'), address: '127.0.0.1', port: rsyncPort, hostsAllow: '', root: true }));
    daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, '--address=127.0.0.1', `--port=${rsyncPort}`, '--log-file=/dev/null'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && (await sh('rsync', [`rsync://127.0.0.1:${rsyncPort}/`])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const tarball = join(work, 'tree.tgz');
    await must('tar', ['-C', treeDir, '--numeric-owner', '-czf', tarball, '.']);
    http = createServer((req, res) => {
      if (req.url !== '/install/mysql-D7-F.1.0.0.edeploy') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(tarball));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    for (const size of [160, 96]) {
      const d = await loops.attach(size * MiB);
      disks.push({ name: d.name, sizeBytes: size * MiB } as CandidateDisk);
    }
  });
  afterAll(async () => {
    await target?.unmount();
    daemon?.kill();
    http?.close();
    await loops.detachAll();
    rmSync(work, { recursive: true, force: true });
  });

  it('lays out two disks, mounts them in order, copies the tree by rsync and writes fstab, eDeploy conf and the seed', async () => {
    const [big, small] = disks as [CandidateDisk, CandidateDisk];
    const layout: DiskLayout = {
      disks: [
        { device: big.name, partitions: [{ id: 'bios', sizeMiB: 1, use: 'bios-boot' }, { id: 'boot', sizeMiB: 40, use: 'fs', fs: 'ext4', mount: '/boot' }, { id: 'root', use: 'fs', fs: 'ext4', mount: '/', label: 'plroot' }] },
        { partitions: [{ id: 'swap', sizeMiB: 16, use: 'swap' }, { id: 'srv', use: 'fs', fs: 'ext4', mount: '/srv' }] },
      ],
    };
    const lines: string[] = [];
    target = await layoutAndMount(layout, disks, { exec, log: (l) => lines.push(l) });
    const t = target;
    expect(t.applied.disks.map((d) => d.name)).toEqual([big.name, small.name]);
    // What sgdisk wrote, read back: names and type codes.
    const printed = await must('sgdisk', ['--print', `/dev/${big.name}`]);
    expect(printed).toMatch(/^\s+1\s.*EF02\s+bios$/m);
    expect(printed).toMatch(/^\s+2\s.*8300\s+boot$/m);
    expect(printed).toMatch(/^\s+3\s.*8300\s+root$/m);
    const blkid = async (dev: string, tag: string) => (await must('blkid', ['--probe', '--match-tag', tag, '--output', 'value', dev])).trim();
    expect(await blkid(partitionPath(`/dev/${big.name}`, 2), 'TYPE')).toBe('ext4');
    expect(await blkid(partitionPath(`/dev/${big.name}`, 3), 'LABEL')).toBe('plroot');
    expect(await blkid(partitionPath(`/dev/${small.name}`, 1), 'TYPE')).toBe('swap');
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    expect(mounts).toContain(`${partitionPath(`/dev/${big.name}`, 3)} ${t.dir} ext4`);
    expect(mounts).toContain(`${partitionPath(`/dev/${big.name}`, 2)} ${t.dir}/boot ext4`);
    expect(mounts).toContain(`${partitionPath(`/dev/${small.name}`, 2)} ${t.dir}/srv ext4`);
    expect(t.applied.biosBootDisks).toEqual([`/dev/${big.name}`]);

    const copied = await copyTree(tree({ rsyncPort }), 'http://127.0.0.1:7708', 'unused', t.dir, exec, (l) => lines.push(l));
    expect(copied).toEqual({ via: 'rsync', files: 2 });
    expect(readFileSync(join(t.dir, 'etc/mysql/my.cnf'), 'utf8')).toContain('port = 3306');
    expect(statSync(join(t.dir, 'usr/bin/hello')).mode & 0o777).toBe(0o755);

    const seed = { userData: '#cloud-config\n', metaData: 'instance-id: x\n', networkConfig: 'version: 2\n' };
    const hostToken = 'plhost_00000000-0000-0000-0000-000000000001.00000000-0000-0000-0000-000000000002.sig';
    const configured = await configureTarget(t, tree({ rsyncPort, hostToken }), 'http://127.0.0.1:7708', seed, undefined, (l) => lines.push(l));
    expect(configured.files).toEqual(['/etc/fstab', '/var/lib/edeploy/conf', '/var/lib/edeploy/token', '/usr/local/sbin/edeploy']);
    expect(readFileSync(join(t.dir, 'var/lib/edeploy/token'), 'utf8')).toBe(`${hostToken}\n`);
    expect(statSync(join(t.dir, 'var/lib/edeploy/token')).mode & 0o777).toBe(0o600);
    const fstab = readFileSync(join(t.dir, 'etc/fstab'), 'utf8');
    expect(fstab).toBe(fstabOf(t.applied));
    const uuids = await Promise.all([3, 2].map((n) => blkid(partitionPath(`/dev/${big.name}`, n), 'UUID')));
    expect(fstab).toContain(`UUID=${uuids[0]} / ext4 errors=remount-ro 0 1\n`);
    expect(fstab).toContain(`UUID=${uuids[1]} /boot ext4 defaults 0 2\n`);
    expect(fstab).toContain(`UUID=${await blkid(partitionPath(`/dev/${small.name}`, 2), 'UUID')} /srv ext4 defaults 0 2\n`);
    expect(fstab).toContain(`UUID=${await blkid(partitionPath(`/dev/${small.name}`, 1), 'UUID')} none swap sw 0 0\n`);
    expect(existsSync(join(t.dir, 'etc/mdadm/mdadm.conf'))).toBe(false);
    expect(readFileSync(join(t.dir, 'var/lib/cloud/seed/nocloud/user-data'), 'utf8')).toBe('#cloud-config\n');
    expect(statSync(join(t.dir, 'var/lib/edeploy/conf')).mode & 0o777).toBe(0o600);
    // The host's edeploy command reads what the deploy wrote.
    const edeploy = async (cmd: string) => (await must('sh', [join(t.dir, 'usr/local/sbin/edeploy'), cmd]).catch((e: Error) => e.message)).trim();
    process.env['EDEPLOY_ROOT'] = t.dir;
    try {
      expect([await edeploy('role'), await edeploy('version'), await edeploy('profile')]).toEqual(['mysql', 'D7-F.1.0.0', 'db']);
    } finally {
      delete process.env['EDEPLOY_ROOT'];
    }

    // A tree without GRUB cannot boot: the boot loader step says so, and unbinds what it bound.
    await expect(installBootLoader(t, 'reboot', exec, (l) => lines.push(l))).rejects.toThrow(/the tree has no \/usr\/sbin\/grub-install/);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(`${t.dir}/proc`);
    await t.unmount();
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(t.dir);
    target = null;
  });

  it('copies the tree from the HTTP tarball when the controller runs no rsync daemon, onto a layout applied again over the last', async () => {
    const layout: DiskLayout = { disks: [{ device: disks[0]!.name, partitions: [{ id: 'root', use: 'fs', fs: 'ext4', mount: '/' }] }] };
    target = await layoutAndMount(layout, disks, { exec, log: () => undefined });
    const t = target;
    // The old file systems are gone: the partition that starts where the old BIOS boot one did holds only the new ext4.
    expect(readFileSync('/proc/self/mounts', 'utf8')).toContain(`${partitionPath(`/dev/${disks[0]!.name}`, 1)} ${t.dir} ext4`);
    expect(existsSync(join(t.dir, 'etc/fstab'))).toBe(false);
    const copied = await copyTree(tree(), httpUrl, `${httpUrl}/install/mysql-D7-F.1.0.0.edeploy`, t.dir, exec, () => undefined);
    expect(copied.via).toBe('http');
    expect(readFileSync(join(t.dir, 'etc/mysql/my.cnf'), 'utf8')).toContain('port = 3306');
    expect(existsSync(join(t.dir, '.plinth-tree.tar.gz'))).toBe(false);
    await expect(copyTree(tree(), httpUrl, `${httpUrl}/install/nope.edeploy`, t.dir, exec, () => undefined)).rejects.toThrow(/curl.*404/);
    await t.unmount();
    target = null;
  });

  it('writes eDeploy conf with the controller host as RSERV and builds the rsync URL from it', () => {
    expect(rsyncUrlOf(tree({ rsyncPort: 831 }), 'http://10.0.0.1:7708')).toBe('rsync://10.0.0.1:831/install/D7-F.1.0.0/mysql/');
    expect(rsyncUrlOf(tree({ rsyncPort: 831 }), 'http://[fd00::1]:7708')).toBe('rsync://[fd00::1]:831/install/D7-F.1.0.0/mysql/');
    expect(rsyncUrlOf(tree(), 'http://10.0.0.1:7708')).toBeNull();
    expect(edeployConfOf(tree({ rsyncPort: 831 }), 'http://[fd00::1]:7708')).toBe("ROLE='mysql'\nVERS='D7-F.1.0.0'\nRSERV='fd00::1'\nRSERV_PORT=831\nPROFILE='db'\nPLINTH_URL='http://[fd00::1]:7708'\n");
  });
});

describe('the edeploy poll timer', () => {
  it('is written and enabled in a tree that runs systemd, and not in one that does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-poll-timer-'));
    try {
      expect(await writePollTimer(dir)).toEqual([]);
      expect(existsSync(join(dir, 'etc'))).toBe(false);
      mkdirSync(join(dir, 'usr/lib/systemd'), { recursive: true });
      writeFileSync(join(dir, 'usr/lib/systemd/systemd'), '');
      expect(await writePollTimer(dir)).toEqual(['/etc/systemd/system/edeploy-poll.service', '/etc/systemd/system/edeploy-poll.timer']);
      expect(readFileSync(join(dir, 'etc/systemd/system/edeploy-poll.service'), 'utf8')).toContain('ExecStart=/usr/local/sbin/edeploy poll\n');
      expect(readFileSync(join(dir, 'etc/systemd/system/edeploy-poll.timer'), 'utf8')).toContain('WantedBy=timers.target\n');
      expect(readlinkSync(join(dir, 'etc/systemd/system/timers.target.wants/edeploy-poll.timer'))).toBe('/etc/systemd/system/edeploy-poll.timer');
      // Written again (a redeploy over the same files): the same result.
      expect(await writePollTimer(dir)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
