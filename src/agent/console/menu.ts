import type { ConsoleImagesAnswer, ConsoleInstall, ConsoleInstallAnswer } from '../../protocol/agent.js';
import { formatBytes } from '../steps/units.js';

/**
 * The installer's console menu (Butterknife's screens, docs/console.md): plain numbered
 * prompts, one answer a line, so that it works the same on a serial line, a BMC's
 * serial-over-LAN and the screen. Everything it shows and reads goes through a Terminal;
 * what it may install comes from the controller, which decides (and may refuse, the menu
 * then shows why). Each screen ends with a prompt ending in `: ` that a test waits for.
 */

/** A line-oriented terminal: the installer's consoles (tty.ts), or a test's fake. */
export interface Terminal {
  write(text: string): void;
  /** The next line typed, without its end; rejects when the terminal is gone. */
  readLine(): Promise<string>;
}

/** A disk as the installer's own inspection found it. */
export interface DiskChoice {
  name: string;
  sizeBytes: number;
  model: string | null;
  serial: string | null;
}

/** A partition of the chosen disk, for keep-partitions: what it holds now. */
export interface PartitionChoice {
  name: string;
  sizeBytes: number;
  /** The file system blkid finds on it (ext4, xfs, vfat…), null for none. */
  filesystem: string | null;
  label: string | null;
}

export type ConsoleImage = ConsoleImagesAnswer['images'][number];

export interface ConsoleMenuDeps {
  term: Terminal;
  machine: string;
  /** Runs a shell on the console that answered last; resolves when it exits. */
  shell(): Promise<void>;
  /** The disks, from the installer's inspection. */
  disks(): Promise<DiskChoice[]>;
  /** A disk's partitions as they are now (keep-partitions of a partition image). */
  partitions?: (disk: string) => Promise<PartitionChoice[]>;
  /** What the controller offers; absent when nothing may be installed (`noInstall` says why). */
  images?: () => Promise<ConsoleImage[]>;
  /** Asks the controller to install; throws with the controller's reason when it refuses. */
  install?: (choice: ConsoleInstall) => Promise<ConsoleInstallAnswer>;
  /** Why the install entry is unavailable (no orders, no credential). */
  noInstall?: string;
  /** Each choice, for the run's log. */
  log?: (line: string) => void;
}

export type MenuOutcome =
  | { kind: 'reboot' }
  | { kind: 'poweroff' }
  | { kind: 'install'; choice: ConsoleInstall; answer: ConsoleInstallAnswer; image: ConsoleImage; disk: DiskChoice; partition: PartitionChoice | null };

const BACK = Symbol('back');

/** Why an installer without a run cannot install: it holds no credential the controller would take. */
export const NO_ORDERS =
  "the controller has no orders for this machine, so this installer holds no credential to install with: the controller holds an available machine at this menu only with console.installWithoutOrders on, and an operator enables it for one machine with 'plinth machine console NAME'";

/** Shows numbered entries and reads until one of them (or 0 for back, when offered) is typed. */
async function choose<T>(term: Terminal, title: string, entries: { label: string; value: T }[], opts: { back?: boolean; intro?: string[] } = {}): Promise<T | typeof BACK> {
  for (;;) {
    term.write(`\n--- ${title} ---\n`);
    for (const l of opts.intro ?? []) term.write(`${l}\n`);
    entries.forEach((e, i) => term.write(` ${i + 1}) ${e.label}\n`));
    if (opts.back) term.write(' 0) back\n');
    term.write(`Choose [${opts.back ? 0 : 1}-${entries.length}]: `);
    const answer = (await term.readLine()).trim();
    if (opts.back && answer === '0') return BACK;
    const n = /^\d{1,3}$/.test(answer) ? Number(answer) : NaN;
    const entry = entries[n - 1];
    if (entry) return entry.value;
    term.write(`'${answer}' is not one of the choices\n`);
  }
}

const diskLabel = (d: DiskChoice) => `${d.name}  ${formatBytes(d.sizeBytes)}  ${d.model ?? 'unknown model'}${d.serial ? `  serial ${d.serial}` : ''}`;
const partitionLabel = (p: PartitionChoice) => `${p.name}  ${formatBytes(p.sizeBytes)}  ${p.filesystem ?? 'no file system'}${p.label ? ` "${p.label}"` : ''}`;
const imageLabel = (i: ConsoleImage) =>
  `${i.name}  ${formatBytes(i.sizeBytes)}  sha256 ${i.sha256.slice(0, 12)}  ${i.createdAt.slice(0, 10)}${i.wholeDisk ? '' : '  [partition image]'}${i.multicast ? `  [multicast session waiting: ${i.multicast.receivers}/${i.multicast.minReceivers} receivers]` : ''}`;

/** The main menu, and the install screens behind it; returns what the machine does next. */
export async function consoleMenu(d: ConsoleMenuDeps): Promise<MenuOutcome> {
  const log = d.log ?? (() => undefined);
  const installable = d.images && d.install && !d.noInstall;
  for (;;) {
    type Main = 'install' | 'shell' | 'reboot' | 'poweroff';
    const entries: { label: string; value: Main }[] = [
      ...(installable ? [{ label: 'Install an image on a disk', value: 'install' as const }] : []),
      { label: 'Shell', value: 'shell' },
      { label: 'Reboot', value: 'reboot' },
      { label: 'Power off', value: 'poweroff' },
    ];
    const intro = installable ? [] : [`(installing is not available: ${d.noInstall ?? 'the controller offers nothing'})`];
    const main = await choose(d.term, `Plinth installer: machine ${d.machine}`, entries, { intro });
    if (main === BACK) continue;
    log(`console: ${main}`);
    if (main === 'reboot' || main === 'poweroff') return { kind: main };
    if (main === 'shell') {
      d.term.write('Starting a shell; exit it to come back to this menu.\n');
      await d.shell();
      continue;
    }
    const done = await installScreens(d, log);
    if (done) return done;
  }
}

/** Disk, image, layout, transport, confirmation; null when the operator went back to the main menu. */
async function installScreens(d: ConsoleMenuDeps, log: (line: string) => void): Promise<MenuOutcome | null> {
  const disks = await d.disks();
  if (disks.length === 0) {
    d.term.write('This machine has no disk to install on.\n');
    return null;
  }
  let images: ConsoleImage[];
  try {
    images = await d.images!();
  } catch (e) {
    d.term.write(`The controller refused: ${(e as Error).message}\n`);
    return null;
  }
  if (images.length === 0) {
    d.term.write('The controller offers no image (plinth image upload).\n');
    return null;
  }
  for (;;) {
    const disk = await choose(d.term, 'Target disk', disks.map((x) => ({ label: diskLabel(x), value: x })), { back: true });
    if (disk === BACK) return null;
    const image = await choose(d.term, 'Image', images.map((x) => ({ label: imageLabel(x), value: x })), { back: true });
    if (image === BACK) continue;
    const layout = await choose(
      d.term,
      'Partitioning',
      [
        { label: `Whole disk: the image replaces everything on ${disk.name}`, value: 'whole-disk' as const },
        { label: 'Keep partitions: write the image into one partition and keep the others', value: 'keep-partitions' as const },
      ],
      { back: true },
    );
    if (layout === BACK) continue;
    // A partition image goes into one partition: which. (A whole-disk image has no partition to
    // go into; the controller refuses that install and the menu shows why.)
    let partition: PartitionChoice | null = null;
    if (layout === 'keep-partitions' && !image.wholeDisk) {
      const parts = (await d.partitions?.(disk.name)) ?? [];
      if (parts.length === 0) {
        d.term.write(`${disk.name} has no partitions to keep: choose whole-disk, or another disk.\n`);
        continue;
      }
      const intro = [`${image.name} (${formatBytes(image.sizeBytes)}) goes into one partition of ${disk.name}; the others are kept as they are.`];
      const chosen = await choose(d.term, 'Partition', parts.map((x) => ({ label: partitionLabel(x), value: x })), { back: true, intro });
      if (chosen === BACK) continue;
      partition = chosen;
    }
    let multicast = false;
    if (image.multicast) {
      const how = await choose(
        d.term,
        'Transport',
        [
          { label: `Join the multicast session waiting for ${image.name} (${image.multicast.receivers} of ${image.multicast.minReceivers} receivers)`, value: true },
          { label: 'HTTP, on its own', value: false },
        ],
        { back: true },
      );
      if (how === BACK) continue;
      multicast = how;
    }
    const where = partition ? `${partition.name} (${formatBytes(partition.sizeBytes)}) of ${disk.name}` : `${disk.name} (${formatBytes(disk.sizeBytes)})`;
    d.term.write(`\n--- Confirm ---\nInstall ${image.name} (sha256 ${image.sha256}) on ${where}, ${layout}, over ${multicast ? 'multicast' : 'HTTP'}.\n`);
    if (layout === 'whole-disk') d.term.write(`Everything on ${disk.name} is overwritten.\n`);
    if (partition) d.term.write(`Everything on ${partition.name} is overwritten; the other partitions of ${disk.name} are kept.\n`);
    d.term.write('Type yes to install, anything else to go back: ');
    if ((await d.term.readLine()).trim().toLowerCase() !== 'yes') continue;
    const choice: ConsoleInstall = { image: image.name, disk: disk.name, layout, ...(partition ? { partition: partition.name, partitionSizeBytes: partition.sizeBytes } : {}), ...(multicast ? { multicast } : {}) };
    log(`console: install ${image.name} on ${partition?.name ?? disk.name}, ${layout}, ${multicast ? 'multicast' : 'http'}`);
    try {
      const answer = await d.install!(choice);
      d.term.write(`Installing ${image.name} on ${partition?.name ?? disk.name} (deploy run ${answer.run}).\n`);
      return { kind: 'install', choice, answer, image, disk, partition };
    } catch (e) {
      const message = (e as Error).message;
      log(`console: refused: ${message}`);
      d.term.write(`Refused: ${message}\n`);
    }
  }
}

/** The last screen, after an install: what happened, and what the machine does now. */
export async function finalScreen(d: Pick<ConsoleMenuDeps, 'term' | 'shell' | 'log'>, summary: string): Promise<'reboot' | 'poweroff'> {
  for (;;) {
    const next = await choose(
      d.term,
      'Done',
      [
        { label: 'Reboot (into the installed system)', value: 'reboot' as const },
        { label: 'Power off', value: 'poweroff' as const },
        { label: 'Shell', value: 'shell' as const },
      ],
      { intro: [summary] },
    );
    if (next === BACK) continue;
    d.log?.(`console: ${next}`);
    if (next !== 'shell') return next;
    await d.shell();
  }
}
