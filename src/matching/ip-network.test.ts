import { describe, expect, it } from 'vitest';
import { networkContains, parseAddress, parseIPv4, parseIPv6, parseNetwork } from './ip-network.js';

const contains = (net: string, addr: string): boolean => {
  const n = parseNetwork(net);
  const a = parseAddress(addr);
  if (!n.ok || !a.ok) throw new Error('parse failed');
  return networkContains(n.value, a.value);
};

describe('IPv4 (Python ipaddress rules)', () => {
  it('parses dotted quads and refuses leading zeros, out-of-range octets and junk', () => {
    expect(parseIPv4('10.66.6.249')).toBe(0x0a4206f9n);
    expect(parseIPv4('0.0.0.0')).toBe(0n);
    for (const bad of ['010.0.0.1', '256.0.0.1', '1.2.3', '1.2.3.4.5', '1.2.3.4 ', 'a.b.c.d', '', '1..2.3']) expect(parseIPv4(bad)).toBeNull();
  });

  it('checks membership, with prefix, netmask and hostmask forms', () => {
    expect(contains('10.66.6.0/24', '10.66.6.249')).toBe(true);
    expect(contains('10.66.6.0/24', '10.66.7.1')).toBe(false);
    expect(contains('10.0.0.0/255.0.0.0', '10.9.8.7')).toBe(true);
    expect(contains('10.0.0.0/0.255.255.255', '10.9.8.7')).toBe(true);
    expect(contains('10.0.0.0/024', '10.0.0.1')).toBe(true);
    expect(contains('0.0.0.0/0', '192.168.1.1')).toBe(true);
    expect(contains('192.168.1.1', '192.168.1.1')).toBe(true);
  });

  it('refuses networks with host bits set, bad prefixes and bad masks', () => {
    expect(parseNetwork('192.168.2.1/24')).toEqual({ ok: false, error: "'192.168.2.1/24' has host bits set" });
    expect(parseNetwork('10.0.0.0/33').ok).toBe(false);
    expect(parseNetwork('10.0.0.0/255.0.255.0').ok).toBe(false);
    expect(parseNetwork('10.0.0.0/8/8').ok).toBe(false);
    expect(parseNetwork('network/24').ok).toBe(false);
  });
});

describe('IPv6', () => {
  it('parses compressed forms, embedded IPv4 and zones', () => {
    expect(parseIPv6('::')).toBe(0n);
    expect(parseIPv6('::1')).toBe(1n);
    expect(parseIPv6('2001:db8::1')).toBe(0x20010db8000000000000000000000001n);
    expect(parseIPv6('::ffff:1.2.3.4')).toBe(0xffff01020304n);
    expect(parseIPv6('fe80::1%eth0')).toBe(0xfe800000000000000000000000000001n);
    expect(parseIPv6('1:2:3:4:5:6:7::')).toBe(0x00010002000300040005000600070000n);
    for (const bad of ['1::2::3', ':1::', '12345::', '1:2:3:4:5:6:7:8:9', 'g::1', '::1%', '1:2:3:4:5:6:7:8::']) expect(parseIPv6(bad)).toBeNull();
  });

  it('checks membership and keeps families apart', () => {
    expect(contains('2001:db8::/32', '2001:db8:1::5')).toBe(true);
    expect(contains('2001:db8::/32', '2001:db9::5')).toBe(false);
    expect(contains('fe80::/10', 'fe80::1%eth0')).toBe(true);
    expect(contains('::/0', '10.0.0.1')).toBe(false);
    expect(contains('10.0.0.0/8', '::ffff:10.0.0.1')).toBe(false);
    expect(parseNetwork('2001:db8::1/64')).toEqual({ ok: false, error: "'2001:db8::1/64' has host bits set" });
    expect(parseNetwork('2001:db8::/ffff::').ok).toBe(false);
  });
});
