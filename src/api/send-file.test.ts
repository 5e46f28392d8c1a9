import { describe, expect, it } from 'vitest';
import { ReadSizes } from './send-file.js';

const MiB = 1024 * 1024;

describe('ReadSizes', () => {
  it('gives 1 MiB reads while their buffers fit the budget, 32 KiB reads beyond it, and 1 MiB again once one is handed back', () => {
    const sizes = new ReadSizes(8 * MiB);
    const taken = Array.from({ length: 6 }, () => sizes.take());
    expect(taken).toEqual([MiB, MiB, MiB, MiB, 32 * 1024, 32 * 1024]);
    sizes.give(32 * 1024);
    expect(sizes.take()).toBe(32 * 1024);
    sizes.give(MiB);
    expect(sizes.take()).toBe(MiB);
    expect(sizes.take()).toBe(32 * 1024);
  });

  it('keeps a thousand downloads at once under the budget plus 64 KiB each', () => {
    const sizes = new ReadSizes();
    const total = Array.from({ length: 1000 }, () => 2 * sizes.take()).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(32 * MiB + 1000 * 64 * 1024);
  });
});
