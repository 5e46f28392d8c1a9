import { describe, expect, it } from 'vitest';
import { formatSeconds, parseDuration } from './clock.js';

describe('durations', () => {
  it('reads 90s, 30m, 2h and 1d, and refuses what is not one', () => {
    expect([parseDuration('90s'), parseDuration('30m'), parseDuration('2h'), parseDuration('1d'), parseDuration('1.5m')]).toEqual([90_000, 1_800_000, 7_200_000, 86_400_000, 90_000]);
    for (const junk of ['', 'soon', '30 minutes', '-5m', '5x', '1h30m']) expect(() => parseDuration(junk), junk).toThrow(/not a duration/);
  });

  it('writes whole seconds in the largest unit that divides them, which parseDuration reads back', () => {
    const cases: [number, string][] = [[90, '90s'], [1800, '30m'], [3600, '1h'], [5400, '90m'], [86_400, '1d'], [172_800, '2d'], [61, '61s'], [0, '0s']];
    for (const [s, text] of cases) {
      expect(formatSeconds(s)).toBe(text);
      expect(parseDuration(text)).toBe(s * 1000);
    }
  });
});
