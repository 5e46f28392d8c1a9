import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { slotFile, slotsHeldByAncestors, takeVmSlots, type VmSlots } from '../support/vm-slots.js';

/**
 * The machine-wide VM slots with real flock(1) on lock files in a directory of the test's own
 * (not vmrun's /tmp, which other runs use): who gets which slot, who waits, that a waiting
 * taker holds nothing, that a dead process's slots come back, and that a run started the way
 * vmrun starts one (a slot file held open by an ancestor) is recognised.
 */
const dir = mkdtempSync(join(tmpdir(), 'plinth-vm-slots-'));
const started: ChildProcess[] = [];
const held: VmSlots[] = [];
/** Grandchildren to kill by pid after each test. */
const strays: number[] = [];

/** Resolves when `p` settles; `settled()` says whether it has, without waiting. */
function track<T>(p: Promise<T>) {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  return { promise: p, settled: () => done };
}

/** Whether a slot is free now: an outside flock -n on it succeeds. */
const free = (slot: 1 | 2) => spawnSync('flock', ['-n', slotFile(dir, slot), 'true']).status === 0;

/** Polls a condition (flock states change in other processes) until it holds. */
async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 200));
}

/** A process outside this one holding `slot` (as vmrun does), until it is killed. */
async function outsideHolder(slot: 1 | 2): Promise<ChildProcess> {
  // -o: only flock holds the lock, not its command; the command ends when its stdin closes.
  const child = spawn('flock', ['-o', slotFile(dir, slot), 'sh', '-c', 'echo held; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`flock exited ${c}`)));
  });
  return child;
}

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin?.end();
  child.kill('SIGKILL');
  await exited;
};

const take = async (count: 1 | 2) => {
  const s = await takeVmSlots(count, { dir });
  held.push(s);
  return s;
};

afterEach(async () => {
  for (const s of held.splice(0)) await s.release();
  for (const c of started.splice(0)) await stop(c);
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('VM slots', () => {
  it('gives two one-slot takers one slot each; a third waits and gets the one given back', async () => {
    const a = await take(1);
    const b = await take(1);
    expect([...a.slots, ...b.slots].sort()).toEqual([1, 2]);
    expect([free(1), free(2)]).toEqual([false, false]);
    const c = track(takeVmSlots(1, { dir }));
    expect(c.settled()).toBe(false);
    const given = b.slots[0]!;
    await b.release();
    const third = await c.promise;
    held.push(third);
    expect(third.slots).toEqual([given]);
    expect(third.inherited).toEqual([]);
  });

  it('gives a two-slot taker one slot and then the other; keep(1) gives one back', async () => {
    const outside = await outsideHolder(2);
    const both = track(takeVmSlots(2, { dir }));
    // It takes the free one and waits for the other.
    await waitUntil(() => !free(1));
    expect(both.settled()).toBe(false);
    await stop(outside);
    const s = await both.promise;
    held.push(s);
    expect(s.slots).toEqual([1, 2]);
    expect([free(1), free(2)]).toEqual([false, false]);
    await s.keep(1);
    expect(s.slots).toEqual([1]);
    expect([free(1), free(2)]).toEqual([false, true]);
    const other = await take(1);
    expect(other.slots).toEqual([2]);
  });

  it('gives its one slot back after its patience, so that a vmrun vmrun holding the other and waiting for it goes first: no deadlock', async () => {
    // vmrun vmrun's way: hold slot 2, then (told to go, once the taker holds slot 1) wait for
    // slot 1, blocking, and keep both until stdin closes.
    const vmrunVmrun = spawn('flock', ['-o', slotFile(dir, 2), 'sh', '-c', `echo has-2; read go; flock -o "$0" sh -c 'echo has-both; exec cat'`, slotFile(dir, 1)], { stdio: ['pipe', 'pipe', 'inherit'] });
    started.push(vmrunVmrun);
    const said: string[] = [];
    vmrunVmrun.stdout!.on('data', (d: Buffer) => said.push(...d.toString().trim().split('\n')));
    await waitUntil(() => said.includes('has-2'));
    const both = track(takeVmSlots(2, { dir, patienceSeconds: 4, backoffSeconds: 6 }));
    await waitUntil(() => !free(1));
    vmrunVmrun.stdin!.write('go\n');
    // Each holds one slot and waits for the other's: the taker gives slot 1 up after its
    // patience, and vmrun vmrun gets it.
    await waitUntil(() => said.includes('has-both'));
    expect(both.settled()).toBe(false);
    await stop(vmrunVmrun);
    const s = await both.promise;
    held.push(s);
    expect(s.slots).toEqual([1, 2]);
  });

  it('gets the slots of a process that died holding them back', async () => {
    const script = join(dir, 'holder.mts');
    writeFileSync(
      script,
      `import { takeVmSlots } from ${JSON.stringify(fileURLToPath(new URL('../support/vm-slots.ts', import.meta.url)))};\n` +
        `const s = await takeVmSlots(2, { dir: ${JSON.stringify(dir)} });\nconsole.log('held ' + s.slots.join(' '));\nsetInterval(() => {}, 60_000);\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
    });
    expect(line).toBe('held 1 2');
    expect([free(1), free(2)]).toEqual([false, false]);
    await stop(child);
    // Its flock holder died with it (parent-death signal): both slots are free again.
    expect((await take(2)).slots).toEqual([1, 2]);
  });

  it('recognises a run started under vmrun: the slot an ancestor holds is the run\'s; a file needing two takes the other only if it is free', async () => {
    // vmrun's way: open the slot file, flock it, exec the command with it open. Here the
    // command starts a child that does not have it (as Node's children do not).
    const run = spawn('sh', ['-c', `exec 9>"$1"; flock 9; sh -c 'exec 9>&-; echo $$; exec sleep 600' &\nwait`, 'vmrun-like', slotFile(dir, 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(run);
    const innerPid = Number(await new Promise<string>((r) => run.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))));
    strays.push(innerPid);
    expect(slotsHeldByAncestors(dir, innerPid)).toEqual([1]);
    expect(slotsHeldByAncestors(dir, process.pid)).toEqual([]);
    const s = await takeVmSlots(1, { dir, from: innerPid });
    expect(s).toMatchObject({ slots: [1], inherited: [1] });
    // Nothing was taken for it: slot 2 is still free.
    expect(free(2)).toBe(true);
    // Needing two, it takes the other one only if it is free now.
    const outside = await outsideHolder(2);
    await expect(takeVmSlots(2, { dir, from: innerPid })).rejects.toThrow(/boots 2 VMs at once, but its run was started holding 1 VM slot \(vmrun\) and the other is taken: run it with `vmrun vmrun …`/);
    expect(free(1) || free(2)).toBe(false);
    await stop(outside);
    const two = await takeVmSlots(2, { dir, from: innerPid });
    held.push(two);
    expect(two).toMatchObject({ slots: [1, 2], inherited: [1] });
    expect(free(2)).toBe(false);
    await two.keep(1);
    expect(two.slots).toEqual([1]);
    expect(free(2)).toBe(true);
  });
});
