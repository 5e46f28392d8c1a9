import { describe, expect, it } from 'vitest';
import { buildRenderContext, OS_DEFAULTS, type RenderContextInput } from './context.js';
import { DEPLOY_KEY, dhcpInput, SITE_KEY, staticInput } from './test-fixtures.js';

type Vars = Record<string, unknown>;
const withVars = (vars: Vars, base: RenderContextInput = staticInput()): RenderContextInput => ({ ...base, vars });
const build = (input: RenderContextInput) => buildRenderContext(input);

describe('buildRenderContext', () => {
  describe('hostname', () => {
    it('is the Plinth name of the machine without variables', () => {
      const context = build(dhcpInput());
      expect([context.hostname, context.domain, context.fqdn]).toEqual(['brisk-heron-3f7a', null, null]);
    });

    it('comes from vars.hostname, whose domain part becomes the domain', () => {
      const context = build(withVars({ hostname: 'Web01.Example.com.' }));
      expect([context.hostname, context.domain, context.fqdn]).toEqual(['web01', 'example.com', 'web01.example.com']);
    });

    it('takes the domain from vars.domain when vars.hostname has none', () => {
      expect(build(withVars({ hostname: 'web02', domain: 'dc1.example.net' })).fqdn).toBe('web02.dc1.example.net');
      expect(build(withVars({ domain: 'lab.example' })).fqdn).toBe('steady-osprey-91c2.lab.example');
    });

    it('refuses a name that is not a host name', () => {
      expect(() => build(withVars({ hostname: 'web_01' }))).toThrow(/vars\.hostname: 'web_01' is not a valid host name/);
      expect(() => build(withVars({ hostname: 'web01', domain: 'bad domain' }))).toThrow(/vars\.domain/);
    });
  });

  describe('network', () => {
    it('makes the NIC with link and an IPv4 address primary, else the first', () => {
      const input = staticInput();
      const facts = input.machine.facts!;
      const swapped = { ...input, vars: {}, machine: { ...input.machine, facts: { ...facts, nics: [facts.nics[1]!, facts.nics[0]!] } } };
      expect(build(swapped).network.primary?.name).toBe('eno1');
      const noneUp = { ...swapped, machine: { ...swapped.machine, facts: { ...facts, nics: swapped.machine.facts.nics.map((n) => ({ ...n, link: false })) } } };
      expect(build(noneUp).network.primary?.name).toBe('eno2');
    });

    it('lets vars.mac choose the primary NIC', () => {
      const context = build(withVars({ mac: 'B0-7B-25-D4-10-A1', ip: '192.0.2.10/24' }));
      expect(context.network.primary?.name).toBe('eno2');
      expect(context.network.static).toMatchObject({ nic: 'eno2', mac: 'b0:7b:25:d4:10:a1' });
      expect(context.network.nics.map((n) => [n.id, n.primary, n.static !== null])).toEqual([
        ['eno1', false, false],
        ['eno2', true, true],
      ]);
    });

    it('uses DHCP everywhere unless vars.ip is set', () => {
      const context = build(withVars({ netmask: '255.255.255.0', gateway: '192.0.2.1' }));
      expect(context.network.static).toBeNull();
      expect(context.network.nics.every((n) => n.static === null)).toBe(true);
    });

    it('derives the static settings from the pool variables', () => {
      const context = build(staticInput());
      expect(context.network.static).toEqual({
        nic: 'eno1',
        mac: 'b0:7b:25:d4:10:a0',
        address: '192.0.2.10',
        prefix: 24,
        netmask: '255.255.255.0',
        cidr: '192.0.2.10/24',
        gateway: '192.0.2.1',
        dns: ['192.0.2.53', '192.0.2.54'],
        search: ['example.com'],
      });
      expect(context.network.primary?.static).toEqual(context.network.static);
    });

    it('accepts a prefix, an address/prefix and lists of DNS servers and search domains', () => {
      expect(build(withVars({ ip: '10.1.2.3', prefix: '20', dns: ['10.0.0.53'], search: 'a.example b.example' })).network.static).toMatchObject({
        netmask: '255.255.240.0',
        cidr: '10.1.2.3/20',
        gateway: null,
        dns: ['10.0.0.53'],
        search: ['a.example', 'b.example'],
      });
      expect(build(withVars({ ip: '10.1.2.3/16', netmask: '255.255.0.0' })).network.static?.prefix).toBe(16);
    });

    it('refuses incomplete or contradictory static settings', () => {
      expect(() => build(withVars({ ip: '10.1.2.3' }))).toThrow(/neither vars\.netmask nor vars\.prefix/);
      expect(() => build(withVars({ ip: '10.1.2.3/24', netmask: '255.255.0.0' }))).toThrow(/disagree/);
      expect(() => build(withVars({ ip: '10.1.2.3', netmask: '255.0.255.0' }))).toThrow(/contiguous/);
      expect(() => build(withVars({ ip: '2001:db8::10', prefix: 64 }))).toThrow(/IPv4/);
      expect(() => build(withVars({ ip: '10.1.2.3', prefix: 24, gateway: 'router' }))).toThrow(/vars\.gateway/);
      expect(() => build(withVars({ ip: '10.1.2.3', prefix: 24, dns: 'ns1.example' }))).toThrow(/vars\.dns/);
    });

    it('knows a never-inspected machine’s NICs by their MACs only', () => {
      const input = dhcpInput();
      const context = build({ ...input, machine: { ...input.machine, facts: null, identity: { ...input.machine.identity, macs: ['52:54:00:00:00:0a', '52:54:00:00:00:0b'] } } });
      expect(context.network.nics.map((n) => [n.id, n.name, n.mac, n.primary])).toEqual([
        ['nic0', null, '52:54:00:00:00:0a', true],
        ['nic1', null, '52:54:00:00:00:0b', false],
      ]);
      expect(context.disk).toBeNull();
      expect(context.machine.architecture).toBe('x86_64');
    });
  });

  describe('disk', () => {
    it('is the first disk that is not removable, by its WWN link when it has one', () => {
      const input = staticInput();
      const facts = input.machine.facts!;
      const usbFirst = { ...facts, disks: [{ name: 'sdc', sizeBytes: 16e9, model: 'Flash', serial: null, wwn: null, rotational: false }, ...facts.disks], hw: [...facts.hw, ['disk', 'sdc', 'removable', '1'] as [string, string, string, string]] };
      const context = build({ ...input, machine: { ...input.machine, facts: usbFirst } });
      expect(context.disk).toEqual({
        name: 'sda',
        path: '/dev/sda',
        idPath: '/dev/disk/by-id/wwn-0x5002538f4231abcd',
        stablePath: '/dev/disk/by-id/wwn-0x5002538f4231abcd',
        sizeBytes: 480_103_981_056,
        model: 'MZ7L3480HCHQ',
        serial: 'S6JMNE0T512345',
        wwn: '0x5002538f4231abcd',
        rotational: false,
      });
      expect(build(dhcpInput()).disk).toMatchObject({ name: 'vda', idPath: null, stablePath: '/dev/vda' });
    });

    it('is chosen by vars.disk: a name, a /dev path, or a path the facts cannot confirm', () => {
      expect(build(withVars({ disk: 'sdb' })).disk?.name).toBe('sdb');
      expect(build(withVars({ disk: '/dev/sdb' })).disk?.name).toBe('sdb');
      expect(build(withVars({ disk: '/dev/disk/by-path/pci-0000:3b:00.0-sas-phy0-lun-0' })).disk).toMatchObject({ idPath: '/dev/disk/by-path/pci-0000:3b:00.0-sas-phy0-lun-0', sizeBytes: null });
      expect(() => build(withVars({ disk: 'nvme9n1' }))).toThrow(/'nvme9n1' is not one of the machine's disks \(sda, sdb\)/);
    });
  });

  describe('ssh keys', () => {
    it('puts site keys first, then deploy keys, without duplicates', () => {
      expect(build(staticInput()).ssh).toEqual({ authorizedKeys: [SITE_KEY, DEPLOY_KEY], rootLogin: true });
      expect(build({ ...dhcpInput(), ssh: undefined }).ssh).toEqual({ authorizedKeys: [], rootLogin: false });
    });

    it('refuses anything but one-line public keys', () => {
      expect(() => build({ ...dhcpInput(), ssh: { deployKeys: [`${SITE_KEY}\nssh-rsa AAAA x`] } })).toThrow(/key 1 is not a one-line OpenSSH public key/);
      expect(() => build({ ...dhcpInput(), ssh: { deployKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] } })).toThrow(/not a one-line OpenSSH public key/);
    });
  });

  describe('controller, run and os', () => {
    it('derives the controller URLs from the base URL', () => {
      const context = build({ ...dhcpInput(), controller: { baseUrl: 'https://plinth.example.com/' } });
      expect(context.controller).toEqual({
        baseUrl: 'https://plinth.example.com',
        phoneHomeUrl: 'https://plinth.example.com/agent/v1/installed',
        imageUrl: null,
        artifactsUrl: 'https://plinth.example.com/boot/artifacts/plrun_dhcpTESTtokenNOTsecret0123456789abcdefgh',
      });
    });

    it('refuses values that could break out of a line or an argument', () => {
      expect(() => build({ ...dhcpInput(), controller: { baseUrl: 'ftp://x' } })).toThrow(/controller\.baseUrl/);
      expect(() => build({ ...dhcpInput(), controller: { baseUrl: 'http://x/$(reboot)' } })).toThrow(/controller\.baseUrl/);
      expect(() => build({ ...dhcpInput(), token: "t'; reboot" })).toThrow(/token/);
      expect(() => build({ ...dhcpInput(), os: { packages: ['vim; reboot'] } })).toThrow(/os\.packages\[0\]/);
      expect(() => build({ ...dhcpInput(), os: { timezone: 'Europe/Paris\nd-i x' } })).toThrow(/os\.timezone/);
      expect(() => build({ ...dhcpInput(), os: { user: 'Root' } })).toThrow(/os\.user/);
    });

    it('fills the os knobs from their defaults', () => {
      expect(build(dhcpInput()).os).toEqual(OS_DEFAULTS);
      expect(build(dhcpInput({ mirror: 'http://mirror.example.com/debian/', suite: 'trixie' })).os).toMatchObject({ mirror: 'http://mirror.example.com/debian', suite: 'trixie' });
    });

    it('is plain data', () => {
      const context = build(staticInput());
      expect(JSON.parse(JSON.stringify(context))).toEqual(context);
      expect(context.machine).toMatchObject({ architecture: 'x86_64', bootMode: 'uefi', owner: 'team-web', tags: { rack: 'r12', role: 'web' } });
      expect(context.vars).toMatchObject({ rack: 'r12' });
      expect(() => build(withVars({ big: 10n }))).toThrow(/vars: must be JSON data/);
    });
  });
});
