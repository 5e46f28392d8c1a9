import { afterAll, beforeAll } from 'vitest';
import { takeVmSlots, type SlotCount, type VmSlots } from './vm-slots.js';

/**
 * For a test file: takes `count` slots before its tests (beforeAll, no time limit on the
 * wait) and gives them back after them (afterAll). Call it at the top of the file, so that
 * the slots are taken before the file's own beforeAll starts anything and given back after
 * its own afterAll stopped its VMs. `count`: how many VMs the file runs at once.
 */
export function holdVmSlots(count: SlotCount): { keep(count: 1): Promise<void> } {
  let held: VmSlots | null = null;
  beforeAll(async () => {
    held = await takeVmSlots(count);
  }, 0);
  afterAll(async () => {
    await held?.release();
  });
  return { keep: async (n) => held?.keep(n) };
}
