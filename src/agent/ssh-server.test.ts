import { describe, expect, it } from 'vitest';
import { authorizedKeysFile, publicKeyOf, reachableAddresses } from './ssh-server.js';

describe('installer SSH server helpers', () => {
  it('reads the public key out of dropbearkey -y, without its comment', () => {
    const out = 'Public key portion is:\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk root@installer\nFingerprint: sha1!! 00:11\n';
    expect(publicKeyOf(out)).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk');
    expect(() => publicKeyOf('nothing here')).toThrow(/no public key/);
  });

  it('writes one key a line', () => {
    expect(authorizedKeysFile({ authorizedKeys: ['ssh-ed25519 AAAA a ', 'ssh-rsa BBBB'] })).toBe('ssh-ed25519 AAAA a\nssh-rsa BBBB\n');
  });

  it('reports global addresses, IPv4 first, no loopback or link-local', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false },
        { address: '2001:db8::5', family: 'IPv6', internal: false },
        { address: '10.0.2.15', family: 'IPv4', internal: false },
      ],
    } as unknown as Parameters<typeof reachableAddresses>[0];
    expect(reachableAddresses(ifaces)).toEqual(['10.0.2.15', '2001:db8::5']);
  });
});
