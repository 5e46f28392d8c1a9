import { promises as fsp } from 'node:fs';
import { join, relative } from 'node:path';
import { StepError } from './errors.js';

/**
 * Adds kernel arguments (a profile's or a deploy's `kernelArgs`) to an installed system's boot
 * loader, in its mounted root filesystem, so that they hold from its first boot on and after
 * every kernel update:
 *
 * - `/etc/default/grub`: appended to `GRUB_CMDLINE_LINUX` (what grub-mkconfig writes from);
 * - `/boot/grub/grub.cfg`, `/boot/grub2/grub.cfg`: appended to every `linux`/`linux16`/`linuxefi` line;
 * - `/boot/loader/entries/*.conf` (Boot Loader Specification, Fedora/RHEL): appended to `options`;
 * - `/etc/kernel/cmdline`: appended (what kernel-install writes new BLS entries from).
 *
 * Only files that exist are changed; a root filesystem with neither a grub.cfg nor a BLS entry
 * (an image with a separate /boot, or another boot loader) is an error, because arguments that
 * were asked for and silently not applied are worse than a failed deploy.
 */
export async function addKernelArgs(root: string, args: string): Promise<string[]> {
  const extra = args.trim().replace(/\s+/g, ' ');
  if (extra === '') return [];
  const changed: string[] = [];
  let bootEntries = 0;
  const edit = async (path: string, change: (text: string) => string): Promise<boolean> => {
    const file = await readInside(root, path);
    if (file === null) return false;
    const next = change(file.text);
    if (next !== file.text) {
      await fsp.writeFile(file.real, next);
      changed.push(`/${path}`);
    }
    return true;
  };
  await edit('etc/default/grub', (text) =>
    /^GRUB_CMDLINE_LINUX=/m.test(text)
      ? text.replace(/^GRUB_CMDLINE_LINUX=(["']?)(.*?)\1[ \t]*$/m, (_l, _q: string, value: string) => `GRUB_CMDLINE_LINUX="${joinArgs(value, extra)}"`)
      : `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}GRUB_CMDLINE_LINUX="${extra}"\n`,
  );
  for (const cfg of ['boot/grub/grub.cfg', 'boot/grub2/grub.cfg']) {
    if (await edit(cfg, (text) => text.replace(/^([ \t]*linux(?:16|efi)?[ \t]+\S.*?)[ \t]*$/gm, (_l, line: string) => joinArgs(line, extra)))) bootEntries++;
  }
  const entries = await listInside(root, 'boot/loader/entries');
  for (const name of entries.filter((n) => n.endsWith('.conf'))) {
    if (await edit(`boot/loader/entries/${name}`, (text) => text.replace(/^(options[ \t]+.*?)[ \t]*$/gm, (_l, line: string) => joinArgs(line, extra)))) bootEntries++;
  }
  await edit('etc/kernel/cmdline', (text) => `${joinArgs(text.trim(), extra)}\n`);
  if (bootEntries === 0) {
    throw new StepError('image', `kernelArgs cannot be applied: the root filesystem has no /boot/grub/grub.cfg, /boot/grub2/grub.cfg or /boot/loader/entries/*.conf (a separate /boot or another boot loader)`, { kernelArgs: extra });
  }
  return changed;
}

/** `line` with `extra` after it, unless it already ends with it (a step run again). */
function joinArgs(line: string, extra: string): string {
  if (line === '') return extra;
  return line.endsWith(` ${extra}`) || line === extra ? line : `${line} ${extra}`;
}

/** The text of a regular file under `root`, or null when there is none; never follows a link out of `root`. */
async function readInside(root: string, path: string): Promise<{ real: string; text: string } | null> {
  const full = join(root, path);
  let real: string;
  try {
    real = await fsp.realpath(full);
  } catch {
    return null;
  }
  if (relative(await fsp.realpath(root), real).startsWith('..')) throw new StepError('image', `/${path} leads out of the root filesystem (to ${real})`, { path });
  const stat = await fsp.stat(real);
  return stat.isFile() ? { real, text: await fsp.readFile(real, 'utf8') } : null;
}

async function listInside(root: string, dir: string): Promise<string[]> {
  const real = await fsp.realpath(join(root, dir)).catch(() => null);
  if (real === null) return [];
  if (relative(await fsp.realpath(root), real).startsWith('..')) throw new StepError('image', `/${dir} leads out of the root filesystem (to ${real})`, { path: dir });
  return (await fsp.readdir(real)).sort();
}
