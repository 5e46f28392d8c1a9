import { describe, expect, it } from 'vitest';
import { durationSeconds } from './context.js';
import { UsageError } from './errors.js';

describe('a duration flag', () => {
  it('reads 90s, 30m, 2h, 1d and plain seconds as whole seconds', () => {
    expect(['90s', '30m', '2h', '1d', '45', '1.5m'].map((t) => durationSeconds(t, '--deadline'))).toEqual([90, 1800, 7200, 86_400, 45, 90]);
  });

  it('refuses what is not a duration, and one out of bounds, naming the flag in one line', () => {
    for (const junk of ['soon', '', '30 minutes', '-5m', '1h30m', '5x']) {
      expect(() => durationSeconds(junk, '--deadline'), junk).toThrow(new UsageError(`--deadline: '${junk}' is not a duration (e.g. 60s, 2m)`));
    }
    expect(() => durationSeconds('2h', '--max-wait', { min: 1, max: 3600 })).toThrow(new UsageError("--max-wait: '2h' must be between 1s and 1h"));
    expect(durationSeconds('1h', '--max-wait', { min: 1, max: 3600 })).toBe(3600);
  });
});
