import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { afterAll, expect } from 'vitest';
import { killOwnedQemus, OWNER_VARIABLE, RUN_VARIABLE } from './qemu-processes.js';

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

afterAll(async () => {
  const left = await killOwnedQemus(owner);
  if (left.length > 0) {
    throw new Error(`${file} left QEMU running after its tests (now killed): ${left.map((p) => `pid ${p.pid}: ${p.command.slice(0, 200)}`).join('; ')}`);
  }
});
