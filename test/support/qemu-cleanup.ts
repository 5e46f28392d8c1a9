import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { afterAll, expect } from 'vitest';
import { killOwnedQemus, OWNER_VARIABLE, ownedQemus, RUN_VARIABLE } from './qemu-processes.js';

/**
 * vitest setupFiles: marks everything this test file starts (PLINTH_TEST_OWNER, inherited by
 * child processes) and, after the file's own afterAll hooks, kills any QEMU it left running
 * and fails the file naming them: a test that does not stop its VM is a bug to see, not to
 * hide, but it must not keep eating the machine either.
 */
const run = process.env[RUN_VARIABLE] ?? `run-${process.pid}-${randomBytes(4).toString('hex')}`;
const file = basename(expect.getState().testPath ?? 'unknown');
const owner = `${run}:${file}:${process.pid}`;
process.env[OWNER_VARIABLE] = owner;

/** How long a QEMU the file stopped may take to be gone (its monitor closed, the process still exiting). */
const EXIT_GRACE_MS = 10_000;

afterAll(async () => {
  // A VM stopped by the file counts as stopped once its monitor is closed, while the process
  // may still be exiting, for longer on a busy machine: wait for those to go on their own
  // (a condition, bounded); a QEMU still there after that was never stopped.
  for (const until = Date.now() + EXIT_GRACE_MS; ownedQemus(owner).length > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
  const left = await killOwnedQemus(owner);
  if (left.length > 0) {
    throw new Error(`${file} left QEMU running after its tests (now killed): ${left.map((p) => `pid ${p.pid}: ${p.command.slice(0, 200)}`).join('; ')}`);
  }
});
