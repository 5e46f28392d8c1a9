import { describe, expect, it } from 'vitest';
import { bootNetwork, checkBootAddress, netmaskPrefix, prefixNetmask } from './boot-address.js';

describe('fixed boot addresses', () => {
  it('reads netmasks and finds the subnet of an address', () => {
    expect(netmaskPrefix('255.255.255.0')).toBe(24);
    expect(netmaskPrefix('255.255.240.0')).toBe(20);
    expect(netmaskPrefix('255.255.255.255')).toBe(32);
    expect(netmaskPrefix('255.0.255.0')).toBeNull();
    expect(netmaskPrefix('nonsense')).toBeNull();
    expect(bootNetwork('10.1.17.100', '255.255.240.0', '10.1.16.1')).toEqual({ network: '10.1.16.0', prefix: 20, server: '10.1.16.1' });
    expect(bootNetwork('10.1.17.100', '255.0.255.0', '10.1.16.1')).toBeNull();
  });

  it('takes an address of the subnet that is not its network, broadcast or the controller', () => {
    const net = bootNetwork('10.1.17.100', '255.255.240.0', '10.1.16.1')!;
    expect(() => checkBootAddress('10.1.31.254', net)).not.toThrow();
    for (const [address, why] of [
      ['10.1.32.1', /not in the provisioning subnet 10\.1\.16\.0\/20/],
      ['10.1.16.0', /network address/],
      ['10.1.31.255', /broadcast address/],
      ['10.1.16.1', /controller's own/],
      ['10.1.16.1/24', /not an IPv4 address/],
      ['fd00::5', /^bootAddress: fd00::5 is an IPv6 address: fixed boot addresses are IPv4/],
    ] as const) {
      expect(() => checkBootAddress(address, net), address).toThrow(why);
    }
    expect(() => checkBootAddress('10.1.17.5', null)).toThrow(/dhcp\.mode full.*vmedia\.network/);
    // Why this controller has none, said as it is (an IPv6 range, proxy mode).
    expect(() => checkBootAddress('10.1.17.5', 'the DHCP range is IPv6')).toThrow(/^bootAddress: the DHCP range is IPv6$/);
    // A subnet from vmedia.network is named as such.
    expect(() => checkBootAddress('10.2.0.1', { ...net, source: 'vmedia.network' })).toThrow(/\(vmedia\.network\)/);
  });

  it('writes prefix lengths as netmasks', () => {
    expect(prefixNetmask(24)).toBe('255.255.255.0');
    expect(prefixNetmask(20)).toBe('255.255.240.0');
    expect(prefixNetmask(32)).toBe('255.255.255.255');
    expect(prefixNetmask(0)).toBe('0.0.0.0');
    for (const p of [0, 1, 8, 17, 31, 32]) expect(netmaskPrefix(prefixNetmask(p))).toBe(p);
  });
});
