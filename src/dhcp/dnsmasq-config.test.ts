import { describe, expect, it } from 'vitest';
import { expectGolden } from '../../test/support/golden.js';
import { dnsmasqArgs, dnsmasqConfig, type DnsmasqPlan } from './dnsmasq-config.js';

const plan = (over: Partial<DnsmasqPlan> = {}): DnsmasqPlan => ({
  mode: 'full',
  interface: 'br0',
  serverAddress: '10.78.0.1',
  bootUrl: 'http://10.78.0.1:7708',
  range: '10.78.0.100,10.78.0.150',
  gateway: '',
  dns: '',
  leaseSeconds: 3600,
  hostsDir: '/var/lib/plinth/dhcp/hosts',
  leaseFile: '/var/lib/plinth/dhcp/dnsmasq.leases',
  ...over,
});

describe('dnsmasq configuration', () => {
  it('full mode: addresses, no router or DNS unless given, a boot file per client kind', () => expectGolden('dhcp/full.conf', dnsmasqConfig(plan())));
  it('full mode with gateway, DNS and netmask', () =>
    expectGolden('dhcp/full-gateway.conf', dnsmasqConfig(plan({ range: '10.78.0.100,10.78.0.150,255.255.255.0', gateway: '10.78.0.254', dns: '10.78.0.53,10.78.0.54', leaseSeconds: 300 }))));
  it('proxy mode: PXE menu per architecture, URL for HTTP boot, no addresses', () => expectGolden('dhcp/proxy.conf', dnsmasqConfig(plan({ mode: 'proxy', range: '', bootUrl: 'http://10.78.0.1:7708/' }))));
  it('full mode with an IPv6 range: DHCPv6 and SLAAC, router advertisements without a router, the script URL for iPXE', () =>
    expectGolden(
      'dhcp/full-ipv6.conf',
      dnsmasqConfig(plan({ serverAddress: 'fd00:78::1', bootUrl: 'http://[fd00:78::1]:7708', range: 'fd00:78::100,fd00:78::1ff', dns: 'fd00:78::53,fd00:78::54', leaseSeconds: 300 })),
    ));
  it('never offers itself as router, serves DNS or TFTP', () => {
    const conf = dnsmasqConfig(plan());
    expect(conf).toMatch(/^port=0$/m);
    expect(conf).toMatch(/^dhcp-option=3$/m);
    expect(conf).not.toMatch(/enable-tftp/);
    expect(conf).toMatch(/^interface=br0$/m);
    expect(conf).toMatch(/^bind-interfaces$/m);
  });
  it('refuses a boot URL that would end or split a dnsmasq line, naming publicUrl', () => {
    for (const bootUrl of ['http://10.0.0.1:7708/a,b', 'http://10.0.0.1/x\nenable-tftp', 'https://plinth.example', 'http://a b']) {
      expect(() => dnsmasqConfig(plan({ bootUrl }))).toThrow(/publicUrl/);
    }
  });
  it('runs dnsmasq in the foreground with its log on stderr', () => {
    expect(dnsmasqArgs('/x/dnsmasq.conf')).toEqual(['--keep-in-foreground', '--conf-file=/x/dnsmasq.conf', '--log-facility=-', '--pid-file=']);
  });
});
