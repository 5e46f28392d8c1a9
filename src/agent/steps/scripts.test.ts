import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ScriptResult } from '../../protocol/agent.js';
import { RAID1_EXAMPLE } from '../../protocol/disk-layout.js';
import { StepError } from './errors.js';
import { initramfsRebuildReason, type TreeTarget } from './tree-deploy.js';
import { runScripts, scriptDiskLayout, type ScriptRan } from './scripts.js';

const ran = (name: string, files: Record<string, string>, truncated = false): ScriptRan => ({
  name,
  result: {
    exitCode: 0,
    timedOut: false,
    durationMs: 1,
    output: '',
    files: Object.entries(files).map(([n, c]) => ({ name: n, sizeBytes: c.length, content: Buffer.from(c).toString('base64'), truncated })),
  } satisfies ScriptResult,
});

describe('a configure script computing the disk layout', () => {
  it('runs the real scripts and takes the layout the last one left in its output directory', async () => {
    const layoutScript = `#!/bin/sh\nprintf '%s' '${JSON.stringify(RAID1_EXAMPLE)}' > "$PLINTH_OUTPUT_DIR/disk-layout.json"\n`;
    const results = await runScripts(
      [
        { name: 'first', content: '#!/bin/sh\necho hi\n', timeoutSeconds: 30 },
        { name: 'layout', content: layoutScript, timeoutSeconds: 30 },
      ],
      {},
      { log: () => undefined, report: async () => undefined },
    );
    expect(results.map((r) => r.name)).toEqual(['first', 'layout']);
    expect(scriptDiskLayout(results)).toEqual({ script: 'layout', layout: RAID1_EXAMPLE });
    expect(scriptDiskLayout(results.slice(0, 1))).toBeNull();
  });

  it('names the script and the field when the file is not a layout', () => {
    const failure = (r: ScriptRan) => {
      try {
        scriptDiskLayout([r]);
      } catch (e) {
        expect(e).toBeInstanceOf(StepError);
        expect((e as StepError).step).toBe(`script-${r.name}`);
        return (e as Error).message;
      }
      throw new Error('no failure');
    };
    expect(failure(ran('raid', { 'disk-layout.json': '{nope' }))).toMatch(/^script\[raid\]\.disk-layout\.json is not JSON/);
    expect(failure(ran('raid', { 'disk-layout.json': '{}' }, true))).toMatch(/^script\[raid\]\.disk-layout\.json is larger than/);
    const noRoot = { disks: [{ partitions: [{ id: 'a', use: 'swap' }] }] };
    expect(failure(ran('raid', { 'disk-layout.json': JSON.stringify(noRoot) }))).toBe('script[raid].disk-layout.json.disks no file system is mounted at /');
    const badMember = structuredClone(RAID1_EXAMPLE);
    badMember.raid![0]!.members[1] = 'nope';
    expect(failure(ran('raid', { 'disk-layout.json': JSON.stringify(badMember) }))).toMatch(/^script\[raid\]\.disk-layout\.json\.raid\[0\]\.members\[1\] .*not a partition/);
    expect(failure(ran('x', { 'disk-layout.json': JSON.stringify({ disks: 'one' }) }))).toMatch(/^script\[x\]\.disk-layout\.json\.disks /);
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
