import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../test/support/plinth-process.js';
import { DnsmasqLogReader, MAX_LOG_LINE, type DhcpEvent } from './dnsmasq-log.js';

/** Logs captured from dnsmasq 2.90 (Debian 12) answering test/support/peers/dhcp-probe.mjs on a bridge. */
const captured = (name: string) => readFileSync(join(ROOT, 'test', 'fixtures', 'dnsmasq', name), 'utf8').split('\n');

function read(lines: string[]): DhcpEvent[] {
  const r = new DnsmasqLogReader();
  return [...lines.flatMap((l) => r.line(l)), ...r.flush()];
}

describe('dnsmasq log → DHCP events', () => {
  it('full mode: one ACK per client, with its kind, address and boot file', () => {
    const events = read(captured('full-mode.log'));
    expect(events.map((e) => [e.kind, e.client, e.mac, e.address, e.bootFile, e.nextServer])).toEqual([
      ['ack', 'bios-pxe', '52:54:00:aa:bb:03', '10.78.0.136', 'undionly.kpxe', '10.78.0.1'],
      ['ack', 'uefi-pxe', '52:54:00:aa:bb:07', '10.78.0.140', 'ipxe.efi', '10.78.0.1'],
      ['ack', 'ipxe', '52:54:00:aa:bb:06', '10.78.0.139', 'http://10.78.0.1:7708/boot.ipxe', '10.78.0.1'],
      ['ack', 'http-boot', '52:54:00:aa:bb:01', '10.78.0.134', 'http://10.78.0.1:7708/boot/ipxe.efi', '10.78.0.1'],
    ]);
    expect(events[0]!.vendorClass).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(events[3]!.tags).toEqual(['httpboot', 'eth0']);
  });

  it('full mode over IPv6: the DHCPv6 REPLY is the ACK, its client named by the MAC dnsmasq found for the DUID', () => {
    // QEMU's iPXE ROM on an IPv6-only bridge (router advertisements before, none of them events).
    const events = read(captured('full-ipv6.log'));
    expect(events.map((e) => [e.kind, e.client, e.mac, e.address, e.bootFile])).toEqual([['ack', 'ipxe', '52:54:00:e2:60:01', 'fd78::10c', 'http://[fd78::1]:8000/boot.ipxe']]);
    expect(events[0]!.tags).toEqual(['ipxe', 'dhcpv6', 'eth0']);
  });

  it('proxy mode: one proxy answer per client', () => {
    const events = read(captured('proxy-mode.log'));
    expect(events.map((e) => [e.kind, e.client, e.mac, e.address])).toEqual([
      ['proxy', 'bios-pxe', '52:54:00:aa:cc:03', null],
      ['proxy', 'uefi-pxe', '52:54:00:aa:cc:05', null],
      ['proxy', 'ipxe', '52:54:00:aa:cc:07', null],
      ['proxy', 'http-boot', '52:54:00:aa:cc:05', null],
    ]);
    expect(events[3]!.bootFile).toBe('http://10.78.0.1:7708/boot/ipxe.efi');
  });

  it("proxy mode: the boot server's answer on port 4011 names the boot file", () => {
    // Captured from dnsmasq 2.90 answering dhcp-probe.mjs --pxe.
    const events = read([
      'dnsmasq-dhcp[11984]: 4292231757 available DHCP subnet: 10.78.0.1/255.255.255.0',
      'dnsmasq-dhcp[11984]: 4292231757 vendor class: PXEClient:Arch:00000:UNDI:002001',
      'dnsmasq-dhcp[11984]: 4292231757 PXE(eth0) 10.78.0.250 52:54:00:aa:ee:06 undionly.kpxe',
      'dnsmasq-dhcp[11984]: 4292231757 tags: eth0',
      'dnsmasq-dhcp[11984]: 4292231757 bootfile name: undionly.kpxe',
      'dnsmasq-dhcp[11984]: 4292231757 next server: 10.78.0.1',
      'dnsmasq-dhcp[11984]: 4292231757 broadcast response',
    ]);
    expect(events.map((e) => [e.kind, e.client, e.address, e.bootFile, e.nextServer])).toEqual([['boot-server', 'bios-pxe', '10.78.0.250', 'undionly.kpxe', '10.78.0.1']]);
  });

  it('an answer is complete when the next packet starts, without waiting for flush', () => {
    const r = new DnsmasqLogReader();
    const lines = captured('full-mode.log');
    const events = lines.flatMap((l) => r.line(l));
    expect(events.length).toBe(3); // the last one waits for flush
  });

  it('a quiet moment before the answer line keeps what the block read so far', () => {
    // A busy machine can deliver a block's lines in several reads, with `flush` between them.
    const r = new DnsmasqLogReader();
    const lines = captured('proxy-mode.log');
    const proxy = lines.findIndex((l) => / PXE\(eth0\) .* proxy$/.test(l));
    const mac = / PXE\(eth0\) (\S+) proxy$/.exec(lines[proxy]!)![1];
    const events = [...lines.flatMap((l, i) => [...r.line(l), ...(i === proxy - 1 ? r.flush() : [])]), ...r.flush()];
    const first = events.find((e) => e.kind === 'proxy' && e.mac === mac);
    expect(first?.client).toBe('bios-pxe');
  });

  it('what comes from the network is checked: bad MACs dropped, text cut and made printable', () => {
    const long = 'X'.repeat(500);
    const events = read([
      'dnsmasq-dhcp[1]: 7 available DHCP range: 10.0.0.1 -- 10.0.0.9',
      `dnsmasq-dhcp[1]: 7 vendor class: PXE\u0007Client${long}`,
      'dnsmasq-dhcp[1]: 7 DHCPACK(eth0) 10.0.0.5 52:54:00:00:00:01 evil\u001b[2Jname',
      'dnsmasq-dhcp[1]: 8 available DHCP range: 10.0.0.1 -- 10.0.0.9',
      'dnsmasq-dhcp[1]: 8 DHCPACK(eth0) 10.0.0.6 not-a-mac',
      'dnsmasq-dhcp[1]: 9 DHCPACK(eth0) 10.0.0.7 ff:ff:ff:ff:ff:ff',
      `dnsmasq-dhcp[1]: 10 DHCPACK(eth0) 10.0.0.8 52:54:00:00:00:02 ${'y'.repeat(MAX_LOG_LINE)}`,
      'dnsmasq-dhcp[1]: 11 DHCPDISCOVER(eth0) 52:54:00:00:00:03 no address available',
      'dnsmasq-dhcp[1]: 12 DHCPNAK(eth0) 10.0.0.99 52:54:00:00:00:04 wrong network',
    ]);
    expect(events.map((e) => [e.kind, e.mac])).toEqual([
      ['ack', '52:54:00:00:00:01'],
      ['no-address', '52:54:00:00:00:03'],
      ['nak', '52:54:00:00:00:04'],
    ]);
    expect(events[0]!.vendorClass).toMatch(/^PXE\?ClientX+$/);
    expect(events[0]!.vendorClass!.length).toBe(128);
    expect(events[0]!.hostname).toBe('evil?[2Jname');
    expect(events[2]!.address).toBe('10.0.0.99');
  });

  it('keeps a bounded number of unfinished transactions', () => {
    const r = new DnsmasqLogReader();
    let out = 0;
    for (let i = 0; i < 1000; i++) out += r.line(`dnsmasq-dhcp[1]: ${i} DHCPACK(eth0) 10.0.0.5 52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`).length;
    expect(out + r.flush().length).toBe(1000);
  });
});
