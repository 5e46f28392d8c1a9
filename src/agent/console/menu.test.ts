import { describe, expect, it } from 'vitest';
import { consoleMenu, finalScreen, NO_ORDERS, type ConsoleImage, type ConsoleMenuDeps, type DiskChoice, type Terminal } from './menu.js';
import type { ConsoleInstall } from '../../protocol/agent.js';

/**
 * A terminal fed the lines a person would type, each only once the screen before it asked
 * (its prompt ends in ': '), and keeping everything shown.
 */
function fakeTerminal(answers: string[]): Terminal & { shown: () => string; prompts: number } {
  let shown = '';
  const t = {
    prompts: 0,
    write(text: string) {
      shown += text;
    },
    readLine() {
      t.prompts++;
      if (!shown.endsWith(': ')) return Promise.reject(new Error(`read before a prompt; screen so far:\n${shown}`));
      const a = answers.shift();
      if (a === undefined) return Promise.reject(new Error(`no answer left; screen so far:\n${shown}`));
      shown += `${a}\n`;
      return Promise.resolve(a);
    },
    shown: () => shown,
  };
  return t;
}

const DISKS: DiskChoice[] = [
  { name: 'vda', sizeBytes: 2 * 2 ** 30, model: 'QEMU HARDDISK', serial: 'ABC123' },
  { name: 'vdb', sizeBytes: 8 * 2 ** 30, model: null, serial: null },
];
const image = (name: string, over: Partial<ConsoleImage> = {}): ConsoleImage => ({
  name,
  sha256: 'ab'.repeat(32),
  sizeBytes: 16 * 2 ** 20,
  createdAt: '2026-12-03T10:00:00.000Z',
  wholeDisk: true,
  multicast: null,
  ...over,
});

function deps(term: Terminal, over: Partial<ConsoleMenuDeps> = {}) {
  const installs: ConsoleInstall[] = [];
  let shells = 0;
  const d: ConsoleMenuDeps = {
    term,
    machine: 'node-1',
    shell: async () => {
      shells++;
    },
    disks: async () => DISKS,
    images: async () => [image('tiny'), image('debian-12', { multicast: { session: 's1', receivers: 1, minReceivers: 2 } })],
    install: async (c) => {
      installs.push(c);
      return { run: 'run-2', token: 'plrun_x' };
    },
    ...over,
  };
  return { d, installs, shells: () => shells };
}

describe('the console menu', () => {
  it('installs: disk, image, layout and confirmation, sending exactly the choices', async () => {
    const term = fakeTerminal(['1', '2', '1', '1', 'yes']);
    const { d, installs } = deps(term);
    const out = await consoleMenu(d);
    expect(out).toMatchObject({ kind: 'install', answer: { run: 'run-2' }, image: { name: 'tiny' }, disk: { name: 'vdb' } });
    expect(installs).toEqual([{ image: 'tiny', disk: 'vdb', layout: 'whole-disk' }]);
    const shown = term.shown();
    for (const screen of ['--- Plinth installer: machine node-1 ---', '--- Target disk ---', '--- Image ---', '--- Partitioning ---', '--- Confirm ---'])
      expect(shown).toContain(screen);
    expect(shown).toContain(' 1) vda  2.0 GiB  QEMU HARDDISK  serial ABC123');
    expect(shown).toContain(' 2) vdb  8.0 GiB  unknown model');
    expect(shown).toContain('Everything on vdb is overwritten.');
    // Only an image with a waiting session offers the transport screen.
    expect(shown).not.toContain('--- Transport ---');
  });

  it('offers to join the waiting multicast session of an image, and sends the choice', async () => {
    const term = fakeTerminal(['1', '1', '2', '1', '1', 'yes']);
    const { d, installs } = deps(term);
    await consoleMenu(d);
    expect(installs).toEqual([{ image: 'debian-12', disk: 'vda', layout: 'whole-disk', multicast: true }]);
    expect(term.shown()).toContain('[multicast session waiting: 1/2 receivers]');
    expect(term.shown()).toContain('1) Join the multicast session waiting for debian-12 (1 of 2 receivers)');
  });

  it('shows what the controller refused and lets the operator choose again', async () => {
    const term = fakeTerminal(['1', '1', '1', '2', 'yes', '1', '1', '1', 'yes']);
    const seen: ConsoleInstall[] = [];
    const { d } = deps(term, {
      install: async (c) => {
        seen.push(c);
        if (c.layout === 'keep-partitions') throw new Error('/agent/v1/console/install: HTTP 422: layout: keep-partitions writes an image into one partition');
        return { run: 'run-3', token: 't' };
      },
    });
    const out = await consoleMenu(d);
    expect(out.kind).toBe('install');
    expect(seen.map((c) => c.layout)).toEqual(['keep-partitions', 'whole-disk']);
    expect(term.shown()).toContain('Refused: /agent/v1/console/install: HTTP 422: layout: keep-partitions');
  });

  it('keep-partitions of a partition image: the disk\'s partitions with sizes and file systems, and the one chosen sent with its size', async () => {
    // install, vdb, the partition image, keep partitions; a disk without partitions says so and starts over;
    // then vda, the partition image, keep partitions, partition: back; again, partition 2, yes.
    const term = fakeTerminal(['1', '2', '3', '2', '1', '3', '2', '0', '1', '3', '2', '2', 'yes']);
    const parts = { vda: [
      { name: 'vda1', sizeBytes: 512 * 2 ** 20, filesystem: 'vfat', label: 'EFI' },
      { name: 'vda2', sizeBytes: 1536 * 2 ** 20, filesystem: null, label: null },
    ] } as Record<string, { name: string; sizeBytes: number; filesystem: string | null; label: string | null }[]>;
    const { d, installs } = deps(term, {
      images: async () => [image('tiny'), image('debian-12'), image('data-fs', { wholeDisk: false, sizeBytes: 64 * 2 ** 20 })],
      partitions: async (disk) => parts[disk] ?? [],
    });
    const out = await consoleMenu(d);
    expect(installs).toEqual([{ image: 'data-fs', disk: 'vda', layout: 'keep-partitions', partition: 'vda2', partitionSizeBytes: 1536 * 2 ** 20 }]);
    expect(out).toMatchObject({ kind: 'install', partition: { name: 'vda2' } });
    const shown = term.shown();
    expect(shown).toContain(' 3) data-fs  64.0 MiB  sha256 abababababab  2026-12-03  [partition image]');
    expect(shown).toContain('vdb has no partitions to keep: choose whole-disk, or another disk.');
    expect(shown).toContain('--- Partition ---\ndata-fs (64.0 MiB) goes into one partition of vda; the others are kept as they are.\n 1) vda1  512.0 MiB  vfat "EFI"\n 2) vda2  1.5 GiB  no file system\n 0) back\n');
    expect(shown).toContain('Install data-fs (sha256 ' + 'ab'.repeat(32) + ') on vda2 (1.5 GiB) of vda, keep-partitions, over HTTP.\nEverything on vda2 is overwritten; the other partitions of vda are kept.\n');
  });

  it('refuses what is not a choice, goes back with 0, and takes anything but yes as no', async () => {
    // 7, x: not choices; install; disk 3 (none), then 1; image: back; disk: back (main menu);
    // install again, vda, tiny, whole disk, answered "no"; disk: back; power off.
    const term = fakeTerminal(['7', 'x', '1', '3', '1', '0', '0', '1', '1', '1', '1', 'no', '0', '4']);
    const { d, installs } = deps(term);
    const out = await consoleMenu(d);
    expect(installs).toEqual([]);
    expect(term.shown()).toContain("'7' is not one of the choices");
    expect(term.shown()).toContain("'x' is not one of the choices");
    expect(term.shown()).toContain("'3' is not one of the choices");
    expect(out).toEqual({ kind: 'poweroff' });
  });

  it('runs the shell, then shows the menu again; reboot ends it', async () => {
    const term = fakeTerminal(['2', '3']);
    const { d, shells } = deps(term);
    expect(await consoleMenu(d)).toEqual({ kind: 'reboot' });
    expect(shells()).toBe(1);
    expect(term.shown().match(/--- Plinth installer: machine node-1 ---/g)).toHaveLength(2);
  });

  it('without orders offers shell, reboot and power off, and says why it cannot install', async () => {
    const term = fakeTerminal(['1', '3']);
    const { d, shells } = deps(term, { images: undefined, install: undefined, noInstall: NO_ORDERS });
    expect(await consoleMenu(d)).toEqual({ kind: 'poweroff' });
    expect(shells()).toBe(1);
    expect(term.shown()).toContain("(installing is not available: the controller has no orders for this machine, so this installer holds no credential to install with: the controller holds an available machine at this menu only with console.installWithoutOrders on, and an operator enables it for one machine with 'plinth machine console NAME')");
    expect(term.shown()).not.toContain('Install an image');
  });

  it('says so when the controller offers nothing or refuses the offer, and goes back to the main menu', async () => {
    const term = fakeTerminal(['1', '1', '3']);
    let calls = 0;
    const { d } = deps(term, {
      images: async () => {
        calls++;
        if (calls === 1) return [];
        throw new Error('/agent/v1/console/images: HTTP 403: the console is not enabled for machine node-1');
      },
    });
    expect(await consoleMenu(d)).toEqual({ kind: 'reboot' });
    expect(term.shown()).toContain('The controller offers no image');
    expect(term.shown()).toContain('The controller refused: /agent/v1/console/images: HTTP 403: the console is not enabled for machine node-1');
  });

  it('the final screen shows the outcome and returns reboot or power off after any shells', async () => {
    const term = fakeTerminal(['3', '2']);
    let shells = 0;
    const next = await finalScreen({ term, shell: async () => void shells++ }, 'Installed tiny on vda: written and its sha256 verified');
    expect(next).toBe('poweroff');
    expect(shells).toBe(1);
    expect(term.shown()).toContain('--- Done ---\nInstalled tiny on vda: written and its sha256 verified\n 1) Reboot (into the installed system)\n 2) Power off\n 3) Shell\nChoose [1-3]: ');
  });
});
