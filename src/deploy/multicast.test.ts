import { describe, expect, it } from 'vitest';
import { parseRate } from './multicast.js';

describe('parseRate', () => {
  it('reads rates in bits per second with a k, M or G suffix', () => {
    expect(parseRate('200M', 'multicast.rate')).toBe(200_000_000);
    expect(parseRate('1.5g', 'multicast.rate')).toBe(1_500_000_000);
    expect(parseRate('5000k', 'multicast.rate')).toBe(5_000_000);
    expect(parseRate('2000000', 'multicast.rate')).toBe(2_000_000);
  });

  it('refuses, naming the field, what is not a rate or is outside 1M to 100G', () => {
    for (const bad of ['fast', '200 Mbit', '-5M', '800k', '101G', '']) {
      expect(() => parseRate(bad, 'multicast.rate'), bad).toThrow(/^multicast\.rate: '.*' is not a rate between 1M and 100G/);
    }
  });
});
