import { defineConfig } from 'vitest/config';
import { LaneSequencer } from './test/support/e2e-sequencer.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Generous: a limit only bounds a failure, and the build machine may be busy (docs/testing.md).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Every QEMU a test starts is marked with the run and file; each file kills and reports
    // what it left running, and the run fails if any survived to the end (docs/testing.md).
    globalSetup: ['test/support/global-qemu-check.ts'],
    setupFiles: ['test/support/qemu-cleanup.ts'],
    // Two cores: test files run two at a time. End-to-end files also run two at a time, in two
    // lanes, in test/support/e2e-sequencer.ts's order; each takes VM slots
    // (test/support/vm-slots.ts), at most two VMs on the machine.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    sequence: { sequencer: LaneSequencer },
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
