/**
 * The machine-wide VM limit: at most two VMs (two TCG cores) at once on the whole machine,
 * across test files, test runs and anything started with `vmrun`. The limit is two lock files,
 * the ones `/usr/local/bin/vmrun` takes (`/tmp/vmrun.slot1`, `/tmp/vmrun.slot2`), locked with
 * flock(2) through flock(1). Node cannot hold an flock itself, so a small shell holds it: it
 * waits for the slots, says which it got and then keeps them until its stdin closes, which
 * happens when they are given back or when this process dies (it also gets SIGKILL then:
 * setpriv --pdeathsig). A killed test run never leaves a slot taken.
 *
 * Takers poll (as vmrun does). A two-slot taker takes one slot as soon as one is free and
 * waits for the other, as `vmrun vmrun` does; one that held nothing while waiting would never
 * see both free on a busy machine. But it keeps that slot for PATIENCE_SECONDS at most, then
 * gives it back and stays away a moment: waiting for ever would deadlock with a `vmrun vmrun`
 * holding the other slot and waiting for this one. Among takers of this module a queue lock
 * keeps a two-slot taker from being overtaken by one-slot ones: it queues exclusively, they
 * shared.
 *
 * A run started under `vmrun` (or `vmrun vmrun`) already holds one slot (or two) through an
 * ancestor process: those are this run's, nothing more is taken for them. A file that needs
 * two in a run holding one takes the other if it is free at once, and otherwise fails naming
 * the command to use (waiting for it while holding one could deadlock with a `vmrun vmrun`
 * holding that one and waiting for this one).
 *
 * Test files take their slots with holdVmSlots (hold-vm-slots.ts); this module has no vitest
 * in it, so that a plain process can take slots too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export type SlotCount = 1 | 2;

/** Where the slot files are: vmrun's directory, unless a test points elsewhere. */
export const VM_SLOT_DIR = process.env.PLINTH_VM_SLOT_DIR ?? '/tmp';
export const slotFile = (dir: string, slot: 1 | 2) => join(dir, `vmrun.slot${slot}`);
/** How often a waiting taker tries again (vmrun: every 5 s). */
const POLL_SECONDS = 2;
/** How long a two-slot taker keeps one slot while it waits for the other, and then stays away. */
const PATIENCE_SECONDS = 600;
const BACKOFF_SECONDS = 15;

// $1 dir, $2 slots wanted, $3 "wait" or "once" (one try: prints "busy" and ends when they are
// not free), $4 patience, $5 backoff (seconds). fd 7: the queue (vmrun.queue, not one of
// vmrun's files: only this module's takers queue on it), fd 8 and 9: the slots. Prints the
// slots taken ("slots 1 2"), then keeps them until its stdin closes; "release N" gives N back.
const HOLDER = `
set -u
dir=$1 want=$2 mode=$3 patience=$4 backoff=$5
exec 7>"$dir/vmrun.queue"
if [ "$want" = 2 ]; then flock -x 7; else flock -s 7; fi
exec 8>"$dir/vmrun.slot1" 9>"$dir/vmrun.slot2"
a=0 b=0 kept=0
while :; do
  [ $a = 1 ] || { flock -n 8 && a=1; }
  if [ $b = 0 ] && { [ "$want" = 2 ] || [ $a = 0 ]; }; then flock -n 9 && b=1; fi
  [ $((a + b)) -ge "$want" ] && break
  if [ "$mode" = once ]; then echo busy; exit 0; fi
  if [ $((a + b)) = 1 ]; then
    kept=$((kept + ${POLL_SECONDS}))
    if [ $kept -ge "$patience" ]; then
      flock -u 8; flock -u 9; a=0 b=0 kept=0
      sleep "$backoff"
      continue
    fi
  fi
  sleep ${POLL_SECONDS}
done
exec 7>&-
held=""
if [ $a = 1 ]; then held="$held 1"; else exec 8>&-; fi
if [ $b = 1 ]; then held="$held 2"; else exec 9>&-; fi
echo "slots$held"
while read -r word slot; do
  [ "$word" = release ] || continue
  case $slot in 1) exec 8>&- ;; 2) exec 9>&- ;; esac
  echo "released $slot"
done
`;

/**
 * The slots an ancestor of `pid` holds open (vmrun's fds: `vmrun CMD` execs CMD with the
 * slot's file open and locked). Node's children do not inherit that fd, so a vitest worker
 * finds it on the vitest process or the shell above it, not on itself.
 */
export function slotsHeldByAncestors(dir: string = VM_SLOT_DIR, pid: number = process.pid): (1 | 2)[] {
  const wanted = new Map<string, 1 | 2>([[slotFile(dir, 1), 1], [slotFile(dir, 2), 2]]);
  const held = new Set<1 | 2>();
  for (let p = pid; p > 1; ) {
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        try {
          const slot = wanted.get(readlinkSync(`/proc/${p}/fd/${fd}`));
          if (slot) held.add(slot);
        } catch {
          // closed meanwhile
        }
      }
      p = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      break;
    }
  }
  return [...held].sort();
}

export interface VmSlots {
  /** The slots held for this process: taken here, or held by the run (vmrun). */
  readonly slots: (1 | 2)[];
  /** The ones among them the run held already (vmrun): never given back here. */
  readonly inherited: (1 | 2)[];
  /** Gives back slots taken here until `count` are held (a file past the part that boots two VMs at once). */
  keep(count: 0 | 1): Promise<void>;
  /** Gives back every slot taken here; idempotent. */
  release(): Promise<void>;
}

/**
 * Takes `count` slots, waiting as long as it takes (another file's VMs, another engineer's
 * `vmrun`). In a run that holds fewer (vmrun with one slot, a file needing two) it takes the
 * rest only if they are free now, and fails otherwise: waiting there, holding a slot, could
 * deadlock with a `vmrun vmrun` holding the other and waiting for this one.
 */
export async function takeVmSlots(count: SlotCount, opts: { dir?: string; from?: number; patienceSeconds?: number; backoffSeconds?: number } = {}): Promise<VmSlots> {
  const dir = opts.dir ?? VM_SLOT_DIR;
  const inherited = slotsHeldByAncestors(dir, opts.from ?? process.pid);
  const want = count - inherited.length;
  if (want <= 0) return { slots: inherited, inherited, keep: async () => undefined, release: async () => undefined };
  const mode = inherited.length > 0 ? 'once' : 'wait';
  const timing = [String(opts.patienceSeconds ?? PATIENCE_SECONDS), String(opts.backoffSeconds ?? BACKOFF_SECONDS)];
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'sh', '-c', HOLDER, 'vm-slots', dir, String(want), mode, ...timing], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = lineReader(child);
  const first = await lines.next();
  if (first === 'busy') {
    throw new Error(
      `this file boots ${count} VMs at once, but its run was started holding ${inherited.length} VM slot (vmrun) and the other is taken: ` +
        'run it with `vmrun vmrun …`, or without vmrun (it then takes its slots itself)',
    );
  }
  const taken = first
    .replace(/^slots/, '')
    .trim()
    .split(/\s+/)
    .map((s) => Number(s) as 1 | 2);
  const slots = [...inherited, ...taken].sort();
  const give = async (slot: 1 | 2) => {
    child.stdin!.write(`release ${slot}\n`);
    await lines.next();
    taken.splice(taken.indexOf(slot), 1);
    slots.splice(slots.indexOf(slot), 1);
  };
  const release = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      await exited;
    }
    for (const slot of taken.splice(0)) slots.splice(slots.indexOf(slot), 1);
  };
  return {
    slots,
    inherited,
    async keep(keepCount) {
      while (slots.length > keepCount && taken.length > 0) await give(taken[taken.length - 1]!);
    },
    release,
  };
}

/** Reads a child's stdout line by line; fails when it ends before the next line. */
function lineReader(child: ChildProcess): { next(): Promise<string> } {
  const ready: string[] = [];
  const waiting: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let buffer = '';
  let ended: Error | null = null;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buffer += d;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const w = waiting.shift();
      if (w) w.resolve(line);
      else ready.push(line);
    }
  });
  child.on('exit', (code, signal) => {
    ended = new Error(`the VM slot holder ended (${signal ?? `exit ${code}`})`);
    for (const w of waiting.splice(0)) w.reject(ended);
  });
  return {
    next: () => {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) return Promise.reject(ended);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
}
