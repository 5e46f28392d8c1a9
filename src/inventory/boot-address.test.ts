import { describe, expect, it } from 'vitest';
import { bootNetwork, checkBootAddress, netmaskPrefix } from './boot-address.js';

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
      ['fd00::5', /not an IPv4 address/],
    ] as const) {
      expect(() => checkBootAddress(address, net), address).toThrow(why);
    }
    expect(() => checkBootAddress('10.1.17.5', null)).toThrow(/dhcp\.mode full/);
  });
});
