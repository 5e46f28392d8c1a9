import { describe, expect, it } from 'vitest';
import { urlHost } from './url-host.js';

describe('urlHost', () => {
  it('brackets IPv6, drops the zone, unmaps IPv4-mapped addresses and leaves the rest', () => {
    expect(urlHost('fd00:78::1')).toBe('[fd00:78::1]');
    expect(urlHost('fe80::5%eth0')).toBe('[fe80::5]');
    expect(urlHost('::ffff:10.78.0.1')).toBe('10.78.0.1');
    expect(urlHost('::ffff:a4e:1')).toBe('[::ffff:a4e:1]');
    expect(urlHost('10.78.0.1')).toBe('10.78.0.1');
    expect(urlHost('plinth.example.net')).toBe('plinth.example.net');
    expect(new URL(`http://${urlHost('fd00:78::1')}:7708/boot.ipxe`).hostname).toBe('[fd00:78::1]');
  });
});
