import { describe, expect, it } from 'vitest';
import { parseIpAddr } from './ip-addr.js';
import { capture } from './test-fixtures.js';

describe('parseIpAddr', () => {
  it('reads the host with -d: the card only, not loopback nor the ifb devices', () => {
    expect(parseIpAddr(capture('host', 'ip-addr-details.json'))).toEqual([
      {
        name: 'eth0',
        mac: '02:fc:00:00:00:01',
        operState: 'UP',
        lowerUp: true,
        ipv4: [{ address: '192.0.2.2', prefixLength: 24 }],
        // fe80::fc:ff:fe00:1 (scope link) is left out.
        ipv6: [{ address: 'fd00::2', prefixLength: 64 }],
      },
    ]);
  });

  it('cannot tell virtual interfaces without -d: every Ethernet interface is taken', () => {
    expect(parseIpAddr(capture('host', 'ip-addr.json')).map((i) => i.name)).toEqual(['ifb0', 'ifb1', 'eth0']);
  });

  it('reads both cards of the QEMU VM, keeping site-scoped IPv6 and dropping link-local', () => {
    const nics = parseIpAddr(capture('qemu-bios', 'ip-addr-details.json'));
    expect(nics.map((n) => [n.name, n.mac, n.ipv4.map((a) => `${a.address}/${a.prefixLength}`), n.ipv6.map((a) => a.address)])).toEqual([
      ['eth0', '52:54:00:12:34:01', ['10.0.2.15/24'], ['fec0::5054:ff:fe12:3401']],
      ['eth1', '52:54:00:12:34:02', ['10.0.3.15/24'], ['fec0::5054:ff:fe12:3402']],
    ]);
  });

  it("takes a bond slave's own MAC (permaddr) and skips the bond", () => {
    const json = JSON.stringify([
      { ifname: 'eno1', link_type: 'ether', address: '3c:fd:fe:00:00:10', permaddr: '3c:fd:fe:00:00:11', operstate: 'UP', flags: ['UP', 'LOWER_UP', 'SLAVE'], linkinfo: { info_slave_kind: 'bond' }, addr_info: [] },
      { ifname: 'bond0', link_type: 'ether', address: '3c:fd:fe:00:00:10', operstate: 'UP', flags: ['UP'], linkinfo: { info_kind: 'bond' }, addr_info: [] },
    ]);
    expect(parseIpAddr(json).map((n) => [n.name, n.mac])).toEqual([['eno1', '3c:fd:fe:00:00:11']]);
  });

  it('skips interfaces without a usable MAC and non-Ethernet links', () => {
    const json = JSON.stringify([
      { ifname: 'ib0', link_type: 'infiniband', address: '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c3' },
      { ifname: 'weird0', link_type: 'ether', address: '00:00:00:00:00:00' },
      { ifname: 'tun0', link_type: 'none' },
    ]);
    expect(parseIpAddr(json)).toEqual([]);
  });

  it('rejects output that is not JSON', () => {
    expect(() => parseIpAddr('1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536')).toThrow();
  });
});
