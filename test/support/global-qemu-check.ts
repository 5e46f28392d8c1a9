import { randomBytes } from 'node:crypto';
import { killOwnedQemus, ownedQemus, RUN_VARIABLE } from './qemu-processes.js';

/**
 * vitest globalSetup: gives the run an id (inherited by the workers, which mark every process
 * they start with it; see qemu-processes.ts), and at the very end fails the run if any QEMU
 * carrying it is still alive — after killing it, so that a failing check leaks nothing
 * either. A worker that died, a file whose afterAll never ran, a VM started detached or
 * daemonized: all end up here.
 */
export function setup(): void {
  const run = (process.env[RUN_VARIABLE] ??= `run-${process.pid}-${randomBytes(4).toString('hex')}`);
  // When vitest itself goes down (a worker died: "Channel closed"; Ctrl-C) teardown is not
  // called, but the process still exits: kill what the run left, synchronously. First in
  // line, because another exit listener throwing there would skip the ones after it.
  process.prependOnceListener('exit', () => {
    for (const p of ownedQemus(`${run}:`)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export async function teardown(): Promise<void> {
  const run = process.env[RUN_VARIABLE];
  if (!run) return;
  const left = await killOwnedQemus(`${run}:`);
  if (left.length > 0) {
    throw new Error(
      `QEMU still running when the test run ended (now killed): ${left.map((p) => `pid ${p.pid} of ${p.owner.slice(run.length + 1)}: ${p.command.slice(0, 200)}`).join('; ')}`,
    );
  }
}
