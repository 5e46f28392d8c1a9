import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { addKernelArgs } from './kernel-args.js';

/** A root filesystem as a directory: the files each distribution's boot loader reads. */
const roots: string[] = [];
function rootWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'kernel-args-'));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}
const read = (root: string, path: string) => readFileSync(join(root, path), 'utf8');
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('addKernelArgs', () => {
  it('Debian/Ubuntu: every linux line of grub.cfg and GRUB_CMDLINE_LINUX, once even when run again', async () => {
    const root = rootWith({
      'etc/default/grub': "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX='quiet'\n",
      'boot/grub/grub.cfg': 'menuentry a {\n\tlinux\t/vmlinuz root=UUID=1 ro quiet\n}\nsubmenu b {\n  menuentry c {\n    linuxefi /vmlinuz.old root=UUID=1 ro  \n  }\n}\n',
    });
    expect(await addKernelArgs(root, ' intel_iommu=on   nomodeset ')).toEqual(['/etc/default/grub', '/boot/grub/grub.cfg']);
    expect(await addKernelArgs(root, 'intel_iommu=on nomodeset')).toEqual([]);
    expect(read(root, 'etc/default/grub')).toBe('GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet intel_iommu=on nomodeset"\n');
    expect(read(root, 'boot/grub/grub.cfg')).toBe(
      'menuentry a {\n\tlinux\t/vmlinuz root=UUID=1 ro quiet intel_iommu=on nomodeset\n}\nsubmenu b {\n  menuentry c {\n    linuxefi /vmlinuz.old root=UUID=1 ro intel_iommu=on nomodeset\n  }\n}\n',
    );
  });

  it('Fedora/RHEL: BLS entries, /etc/kernel/cmdline, and a GRUB_CMDLINE_LINUX added when there is none', async () => {
    const root = rootWith({
      'etc/default/grub': 'GRUB_TIMEOUT=5\n',
      'etc/kernel/cmdline': 'root=UUID=1 ro\n',
      'boot/loader/entries/abc-6.8.conf': 'title Fedora\nversion 6.8\nlinux /vmlinuz-6.8\noptions root=UUID=1 ro rhgb\n',
      'boot/loader/entries/notes.txt': 'options untouched\n',
    });
    expect(await addKernelArgs(root, 'nomodeset')).toEqual(['/etc/default/grub', '/boot/loader/entries/abc-6.8.conf', '/etc/kernel/cmdline']);
    expect(read(root, 'boot/loader/entries/abc-6.8.conf')).toBe('title Fedora\nversion 6.8\nlinux /vmlinuz-6.8\noptions root=UUID=1 ro rhgb nomodeset\n');
    expect(read(root, 'etc/kernel/cmdline')).toBe('root=UUID=1 ro nomodeset\n');
    expect(read(root, 'etc/default/grub')).toBe('GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="nomodeset"\n');
    expect(read(root, 'boot/loader/entries/notes.txt')).toBe('options untouched\n');
  });

  it('fails with code image when no boot loader configuration is in the root filesystem, rather than dropping the arguments', async () => {
    const root = rootWith({ 'etc/default/grub': 'GRUB_CMDLINE_LINUX=""\n' });
    const error = (await addKernelArgs(root, 'nomodeset').catch((e: unknown) => e)) as StepError;
    expect(error).toBeInstanceOf(StepError);
    expect(error.code).toBe('image');
    expect(error.message).toMatch(/kernelArgs cannot be applied: the root filesystem has no \/boot\/grub\/grub.cfg/);
  });

  it('never follows a link out of the root filesystem', async () => {
    const outside = rootWith({ 'grub.cfg': 'linux /vmlinuz\n' });
    const root = rootWith({});
    mkdirSync(join(root, 'boot/grub'), { recursive: true });
    symlinkSync(join(outside, 'grub.cfg'), join(root, 'boot/grub/grub.cfg'));
    await expect(addKernelArgs(root, 'nomodeset')).rejects.toMatchObject({ code: 'image', message: expect.stringContaining('leads out of the root filesystem') });
    expect(read(outside, 'grub.cfg')).toBe('linux /vmlinuz\n');
  });

  it('does nothing without arguments', async () => {
    expect(await addKernelArgs(rootWith({}), '  ')).toEqual([]);
  });
});
