import { readdirSync, readFileSync } from 'node:fs';

/**
 * QEMU processes started by a test run, found by the marker they inherit: every process a
 * test starts gets PLINTH_TEST_OWNER in its environment (set per test file by
 * test/support/qemu-cleanup.ts, below the run's id set by test/support/global-qemu-check.ts).
 * QEMU started detached (the lab provider, `-daemonize`) or through a shell still carries it,
 * so no spawn site can forget to register what it started. Other runs on the same machine
 * (another checkout, another user's tests) have other ids and are never touched.
 */
export const OWNER_VARIABLE = 'PLINTH_TEST_OWNER';
export const RUN_VARIABLE = 'PLINTH_TEST_RUN';

/**
 * Prefix put in front of QEMU by tests: the kernel kills QEMU when the process that started
 * it dies, even by SIGKILL (a vitest worker killed on timeout runs no afterAll).
 */
export const TEST_QEMU_LAUNCHER = ['setpriv', '--pdeathsig', 'KILL', '--'];

export interface OwnedProcess {
  pid: number;
  owner: string;
  command: string;
}

/** QEMU processes whose marker starts with `ownerPrefix` (a run id, or a run id and file). */
export function ownedQemus(ownerPrefix: string): OwnedProcess[] {
  const found: OwnedProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (!comm.startsWith('qemu-system')) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const owner = env.find((v) => v.startsWith(`${OWNER_VARIABLE}=`))?.slice(OWNER_VARIABLE.length + 1);
      if (owner === undefined || !owner.startsWith(ownerPrefix)) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      // An empty command line: the kernel has already taken the process's memory, it is
      // exiting (a VM the test stopped, not yet reaped). Seen on a fresh clone at load: the
      // file was failed for a QEMU it had stopped ("pid 12282: " and nothing after).
      if (command === '') continue;
      found.push({ pid: Number(entry), owner, command });
    } catch {
      // Gone meanwhile, or not ours to read: either way not a process of this run.
    }
  }
  return found;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0; it is dead for our purposes.
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Kills (SIGKILL) every QEMU of `ownerPrefix` and waits until they are gone; returns what it found. */
export async function killOwnedQemus(ownerPrefix: string): Promise<OwnedProcess[]> {
  const found = ownedQemus(ownerPrefix);
  for (const p of found) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // SIGKILL cannot be ignored: this waits only for the kernel to reap them (a condition,
  // bounded so that a process stuck in the kernel is reported instead of hanging the run).
  for (let i = 0; i < 200 && found.some((p) => alive(p.pid)); i++) await new Promise((r) => setTimeout(r, 50));
  return found;
}
