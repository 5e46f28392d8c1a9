import { describe, expect, it } from 'vitest';
import { parseDhcpRange } from './dhcp-range.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig, envName, loadConfig, parseListen } from './load.js';

describe('configuration', () => {
  it('has defaults for everything', () => {
    const c = loadConfig({});
    expect(c.listen).toBe('0.0.0.0:7708');
    expect(c.dataDir).toBe(join(process.cwd(), 'var'));
    expect(c.deadlines['deploy-wait']).toBe('60m');
    expect(c.releaseWipe).toBe('quick');
  });

  it('applies file < environment < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-cfg-'));
    const file = join(dir, 'plinth.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:1\nlogLevel: debug\ndeadlines:\n  inspecting: 5m\n');
    const c = loadConfig({
      file,
      env: { PLINTH_LISTEN: '127.0.0.1:2', PLINTH_DEADLINES_INSPECT_WAIT: '7m' },
      flags: { listen: '127.0.0.1:3' },
    });
    expect(c.listen).toBe('127.0.0.1:3');
    expect(c.logLevel).toBe('debug');
    expect(c.deadlines.inspecting).toBe('5m');
    expect(c.deadlines['inspect-wait']).toBe('7m');
    expect(c.deadlines.wiping).toBe('10m');
  });

  it('parses every duration once, at load, into milliseconds at the same path', () => {
    const c = loadConfig({ env: { PLINTH_DEADLINES_INSPECT_WAIT: '1.5m' }, flags: { providers: { lease: '90s' }, sweepInterval: '250ms' } });
    expect(c.ms.deadlines['deploy-wait']).toBe(60 * 60_000);
    expect(c.ms.deadlines['inspect-wait']).toBe(90_000);
    expect(c.ms.deadlines['wipe-wait']).toBe(6 * 3_600_000);
    expect(c.ms.providers).toEqual({ timeout: 60_000, powerVerifyTimeout: 60_000, jobDeadline: 600_000, lease: 90_000, syncInterval: 60_000 });
    expect(c.ms.sweepInterval).toBe(250);
    expect(c.ms.deploy.firstBootAllowance).toBe(20 * 60_000);
    expect(c.ms.tftp.transferTimeout).toBe(5 * 60_000);
    // Only durations: every key under `ms` is one the schema declares a duration.
    const durations = describeConfig().filter((d) => typeof d.default === 'string' && /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(d.default)).map((d) => d.key);
    const flat = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' ? flat(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]));
    expect(flat(c.ms).sort()).toEqual(durations.sort());
  });

  it('names the bad key', () => {
    expect(() => loadConfig({ flags: { lisen: 'x' } })).toThrow(/unknown key.*lisen/);
    expect(() => loadConfig({ env: { PLINTH_DEADLINES_DEPLOYING: 'soon' } })).toThrow(/deadlines\.deploying/);
    expect(() => loadConfig({ env: { PLINTH_LOG_LEVEL: 'loud' } })).toThrow(/logLevel/);
    expect(() => loadConfig({ file: '/nonexistent/plinth.yaml', fileRequired: true })).toThrow(/does not exist/);
  });

  it('derives environment names from keys', () => {
    expect(envName(['dataDir'])).toBe('PLINTH_DATA_DIR');
    expect(envName(['deadlines', 'deploy-wait'])).toBe('PLINTH_DEADLINES_DEPLOY_WAIT');
    expect(describeConfig().map((d) => d.env)).toContain('PLINTH_DATABASE_URL');
  });

  it('parses listen addresses', () => {
    expect(parseListen('0.0.0.0:7708')).toEqual({ host: '0.0.0.0', port: 7708 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('7708')).toThrow(/host:port/);
  });
});

describe('webhook lease', () => {
  it('refuses a lease a POST could outlive (under twice webhooks.timeout), naming both fields, from the file, the environment or flags', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'plinth-config-')), 'plinth.yaml');
    writeFileSync(file, 'webhooks:\n  lease: 15s\n');
    const refused = /webhooks\.lease: 15000 ms is shorter than 2 × webhooks\.timeout \(10000 ms\)/;
    expect(() => loadConfig({ file })).toThrow(refused);
    expect(() => loadConfig({ env: { PLINTH_WEBHOOKS_LEASE: '15s' } })).toThrow(refused);
    expect(() => loadConfig({ flags: { webhooks: { lease: '15s' } } })).toThrow(refused);
    expect(() => loadConfig({ env: { PLINTH_WEBHOOKS_TIMEOUT: '31s' } })).toThrow(/webhooks\.lease: 60000 ms is shorter than 2 × webhooks\.timeout \(31000 ms\)/);
    // The boundary is allowed, and a short lease with a short timeout (a test's) too.
    expect(loadConfig({ env: { PLINTH_WEBHOOKS_LEASE: '20s' } }).ms.webhooks).toMatchObject({ lease: 20_000, timeout: 10_000 });
    expect(loadConfig({ flags: { webhooks: { lease: '500ms', timeout: '250ms' } } }).ms.webhooks).toMatchObject({ lease: 500, timeout: 250 });
  });
});

describe('docs/configuration.md', () => {
  it('documents every setting and its environment name', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const d of describeConfig()) {
      expect(doc, d.key).toContain(`| \`${d.key}\` | \`${d.env}\` |`);
    }
  });
});

describe('DHCP configuration', () => {
  it('is off by default; PLINTH_DHCP_* set it', () => {
    expect(loadConfig({}).dhcp.mode).toBe('off');
    const c = loadConfig({ env: { PLINTH_DHCP_MODE: 'full', PLINTH_DHCP_INTERFACE: 'br0', PLINTH_DHCP_RANGE: '10.0.0.100,10.0.0.200', PLINTH_DHCP_LEASE_TIME: '10m' } });
    expect(c.dhcp).toMatchObject({ mode: 'full', interface: 'br0', range: '10.0.0.100,10.0.0.200' });
    expect(c.ms.dhcp.leaseTime).toBe(600_000);
  });

  it('names the key a mode is missing or gets wrong', () => {
    expect(() => loadConfig({ flags: { dhcp: { mode: 'full', interface: 'br0' } } })).toThrow(/dhcp\.range: full DHCP mode needs/);
    expect(() => loadConfig({ flags: { dhcp: { mode: 'proxy' } } })).toThrow(/dhcp\.interface/);
    expect(() => loadConfig({ flags: { dhcp: { mode: 'on' } } })).toThrow(/dhcp\.mode/);
    expect(() => loadConfig({ flags: { dhcp: { mode: 'full', interface: 'br0', range: '10.0.0.1,10.0.0.300' } } })).toThrow(/dhcp\.range/);
    expect(() => loadConfig({ flags: { dhcp: { interface: 'br0\nenable-tftp' } } })).toThrow(/dhcp\.interface/);
    expect(() => loadConfig({ flags: { dhcp: { mode: 'full', interface: 'br0', range: '10.0.0.1,10.0.0.9', dns: '10.0.0.1 x' } } })).toThrow(/dhcp\.dns/);
  });

  it('takes an IPv6 range (prefix length 64 by default), with IPv6 DNS servers and no gateway', () => {
    const c = loadConfig({ env: { PLINTH_DHCP_MODE: 'full', PLINTH_DHCP_INTERFACE: 'br0', PLINTH_DHCP_RANGE: 'fd00:78::100,fd00:78::1ff', PLINTH_DHCP_DNS: 'fd00:78::53' } });
    expect(parseDhcpRange(c.dhcp.range)).toEqual({ family: 6, first: 'fd00:78::100', last: 'fd00:78::1ff', prefixLength: 64 });
    expect(parseDhcpRange('10.0.0.1,10.0.0.9,255.255.255.0')).toEqual({ family: 4, first: '10.0.0.1', last: '10.0.0.9', netmask: '255.255.255.0' });
    const full = (dhcp: Record<string, string>) => () => loadConfig({ flags: { dhcp: { mode: 'full', interface: 'br0', ...dhcp } } });
    expect(full({ range: 'fd00::100,fd00::1ff,120' })().dhcp.range).toBe('fd00::100,fd00::1ff,120');
    expect(full({ range: 'fd00::100,fd00::1ff,48' })).toThrow(/dhcp\.range: prefix length '48' must be 64 to 128/);
    expect(full({ range: 'fd00::100,10.0.0.9' })).toThrow(/dhcp\.range/);
    expect(parseDhcpRange('fd00::100,10.0.0.9')).toMatch(/must both be IPv4 or both IPv6/);
    expect(full({ range: 'fd00:::1,fd00::9' })).toThrow(/dhcp\.range/);
    expect(full({ range: 'fd00::100,fd00::1ff', gateway: '10.0.0.1' })).toThrow(/dhcp\.gateway: an IPv6 range takes no gateway/);
    expect(full({ range: 'fd00::100,fd00::1ff', dns: '10.0.0.53' })).toThrow(/dhcp\.dns: an IPv6 range needs IPv6/);
    expect(full({ range: '10.0.0.1,10.0.0.9', dns: 'fd00::53' })).toThrow(/dhcp\.dns: an IPv4 range needs IPv4/);
    expect(() => loadConfig({ flags: { dhcp: { mode: 'proxy', interface: 'br0', range: 'fd00::1,fd00::9' } } })).toThrow(/dhcp\.range: proxy mode is IPv4 only/);
  });
});

describe('virtual-media boot network', () => {
  it('takes a subnet, a gateway in it and DNS servers from PLINTH_VMEDIA_*', () => {
    const c = loadConfig({ env: { PLINTH_VMEDIA_NETWORK: '10.78.0.0/24', PLINTH_VMEDIA_GATEWAY: '10.78.0.254', PLINTH_VMEDIA_DNS: '10.78.0.53,10.78.0.54' } });
    expect(c.vmedia).toEqual({ network: '10.78.0.0/24', gateway: '10.78.0.254', dns: '10.78.0.53,10.78.0.54' });
    expect(loadConfig({}).vmedia.network).toBe('');
  });

  it('names the key that is wrong', () => {
    const vmedia = (v: Record<string, string>, dhcp: Record<string, string> = {}) => () => loadConfig({ flags: { vmedia: v, dhcp } });
    expect(vmedia({ network: '10.78.0.0' })).toThrow(/vmedia\.network/);
    expect(vmedia({ network: 'fd78::/64' })).toThrow(/vmedia\.network/);
    expect(vmedia({ network: '10.78.0.0/24', gateway: '10.79.0.1' })).toThrow(/vmedia\.gateway: 10\.79\.0\.1 is not in vmedia\.network 10\.78\.0\.0\/24/);
    expect(vmedia({ gateway: '10.78.0.1' })).toThrow(/vmedia\.gateway: needs vmedia\.network/);
    expect(vmedia({ network: '10.78.0.0/24', dns: '10.0.0.1,10.0.0.2,10.0.0.3' })).toThrow(/vmedia\.dns/);
    expect(vmedia({ network: '10.78.0.0/24' }, { mode: 'full', interface: 'br0', range: '10.78.0.100,10.78.0.150' })).toThrow(/vmedia\.network: dhcp\.mode full already defines/);
  });
});
