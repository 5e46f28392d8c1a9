/**
 * What an image build leaves on the host while it runs (mounts, loop devices, processes
 * inside the chroot, its work directory) and how to take it all down again, including after
 * a build that was killed before it could clean up after itself.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ownerAlive } from '../../build/lock.js';
import { isUnder, removeScratchDir, unmountAllUnder } from '../../build/scratch.js';
import { runProcess } from './process.js';

type Log = (line: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Processes that use anything at or below `dir`: chrooted into it, working in it, or holding
 * a file in it open. After a build was killed, its tools (debootstrap, tar, dpkg) live on in
 * process groups of their own and would keep the mounts busy.
 */
export function processesUsing(dir: string): number[] {
  const base = resolve(dir);
  const users: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const links = (): string[] => {
      const found = [`/proc/${entry}/root`, `/proc/${entry}/cwd`];
      try {
        for (const fd of readdirSync(`/proc/${entry}/fd`)) found.push(`/proc/${entry}/fd/${fd}`);
      } catch {
        // Exited meanwhile.
      }
      return found;
    };
    for (const link of links()) {
      try {
        if (isUnder(readlinkSync(link), base)) {
          users.push(Number(entry));
          break;
        }
      } catch {
        // Exited meanwhile, or not ours to inspect.
      }
    }
  }
  return users;
}

/** Kills the processes that use `dir` (see processesUsing); returns how many there were. */
export async function killProcessesUsing(dir: string, log: Log): Promise<number> {
  const victims = processesUsing(dir);
  for (const pid of victims) {
    log(`killing process ${pid}, still using ${resolve(dir)}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  if (victims.length > 0) await sleep(500);
  return victims.length;
}

/** Loop devices (e.g. /dev/loop3) whose backing file is at or below `path`. */
export function loopDevicesBackedBy(path: string): string[] {
  const base = resolve(path);
  const found: string[] = [];
  if (!existsSync('/sys/block')) return found;
  for (const name of readdirSync('/sys/block')) {
    if (!name.startsWith('loop')) continue;
    try {
      const backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
      if (isUnder(backing, base)) found.push(`/dev/${name}`);
    } catch {
      // Not attached.
    }
  }
  return found;
}

export async function detachLoopDevice(device: string, log: Log): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await runProcess('losetup', ['--detach', device], { log });
      return;
    } catch (e) {
      // NOTE: a device that is already detached (its backing_file is gone) is fine.
      if (!existsSync(`/sys/block/${device.replace('/dev/', '')}/loop/backing_file`)) return;
      if (attempt >= 5) throw e;
      await sleep(attempt * 300);
    }
  }
}

export const WORK_DIR_PREFIX = '.image-build-';
export const OWNER_FILE = 'owner';

/**
 * Takes down what earlier builds left behind in `outputDir` when they were killed before
 * their own cleanup ran (SIGKILL, power loss): their chroot processes, mounts, loop devices
 * and work directories. Work directories of builds still running are left alone.
 */
export async function sweepAbandonedBuilds(outputDir: string, log: Log): Promise<void> {
  if (!existsSync(outputDir)) return;
  for (const entry of readdirSync(outputDir)) {
    if (!entry.startsWith(WORK_DIR_PREFIX)) continue;
    const dir = join(outputDir, entry);
    const ownerPath = join(dir, OWNER_FILE);
    const owner = existsSync(ownerPath) ? readFileSync(ownerPath, 'utf8') : '';
    if (owner !== '' && ownerAlive(owner)) continue;
    log(`removing what an interrupted build left in ${dir}`);
    await killProcessesUsing(dir, log);
    await unmountAllUnder(dir, log);
    for (const device of loopDevicesBackedBy(dir)) await detachLoopDevice(device, log);
    await removeScratchDir(dir, log).catch((e: unknown) => log(`cleanup: ${(e as Error).message}`));
  }
}
