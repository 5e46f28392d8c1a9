import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { waitFor } from '../support/e2e.js';
import { ROOT } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';

/**
 * Plinth's supervised dnsmasq serving an IPv6 range (full mode) on a real bridge: the
 * controller's dnsmasq in namespace `ctl` (fd78::1, no IPv4 at all), a DHCPv6 client
 * (test/support/peers/dhcp6-probe.mjs) in `cli`, and router advertisements seen by the
 * kernel of `cli` (SLAAC). Needs root for the namespaces.
 */
const canRun = isRoot() || process.env.CI === 'true';
if (!canRun) console.warn('dhcp-ipv6.test.ts skipped: creating network namespaces needs root (it never skips with CI=true)');

const PROBE = join(ROOT, 'test', 'support', 'peers', 'dhcp6-probe.mjs');
const run = promisify(execFile);

describe.skipIf(!canRun).each(backends)('DHCPv6 on an IPv6-only bridge, $name', (backend) => {
  let net: TestNetwork;
  let t: Awaited<ReturnType<typeof freshController>>;
  beforeAll(async () => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    net = createTestNetwork({ ctl: 'fd78::1/64', cli: null });
    t = await freshController(
      backend,
      { listen: '[::]:0', dhcp: { mode: 'full', interface: 'eth0', range: 'fd78::100,fd78::1ff,64', dns: 'fd78::53', leaseTime: '5m' } },
      { dhcp: { command: [...net.prefix('ctl'), 'dnsmasq'], serverAddress: 'fd78::1' } },
    );
    await t.controller.listen();
    await waitFor('dnsmasq listening on UDP 547', 20_000, async () => (net.exec('ctl', ['ss', '-Hlun']).includes(':547 ') ? true : undefined));
  });
  afterAll(async () => {
    await t?.close();
    net?.remove();
  });

  const probe = async (mac: string, kind: boolean | 'httpboot') => {
    const flag = kind === 'httpboot' ? ['--httpboot'] : kind ? ['--ipxe'] : [];
    const { stdout } = await run(...net.command('cli', [process.execPath, PROBE, '--if', 'eth0', '--mac', mac, '--wait', '20', ...flag]));
    return JSON.parse(stdout) as { address: string | null; bootfileUrl: string | null; dns: string[]; vendorClass: string | null };
  };

  it('offers iPXE an address from the range and the boot script URL with the IPv6 literal; other clients get no boot file', async () => {
    const port = new URL(t.controller.url!).port;
    const ipxe = await probe('52:54:00:d6:00:01', true);
    expect(ipxe.address).toMatch(/^fd78::1[0-9a-f]{2}$/);
    expect(ipxe.bootfileUrl).toBe(`http://[fd78::1]:${port}/boot.ipxe`);
    expect(ipxe.dns).toEqual(['fd78::53']);
    const os = await probe('52:54:00:d6:00:02', false);
    expect(os.address).toMatch(/^fd78::1[0-9a-f]{2}$/);
    expect(os.bootfileUrl).toBeNull();
    expect(os.vendorClass).toBeNull();
  });

  it('answers UEFI HTTP Boot over IPv6 (vendor class HTTPClient, enterprise 343) with the URL of ipxe.efi', async () => {
    const port = new URL(t.controller.url!).port;
    const http = await probe('52:54:00:d6:00:03', 'httpboot');
    expect(http.address).toMatch(/^fd78::1[0-9a-f]{2}$/);
    expect(http.bootfileUrl).toBe(`http://[fd78::1]:${port}/boot/ipxe.efi`);
  });

  it('advertises the prefix for SLAAC and is no default router', async () => {
    // The kernel of `cli` forms an address from the router advertisement (EUI-64 from its MAC).
    const slaac = await waitFor('a SLAAC address in fd78::/64', 30_000, async () => {
      const out = net.exec('cli', ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
      return /inet6 (fd78::[0-9a-f:]+)\/64/.exec(out)?.[1];
    });
    expect(slaac).not.toMatch(/^fd78::1[0-9a-f]{2}$/);
    expect(net.exec('cli', ['ip', '-6', 'route', 'show', 'default'])).toBe('');
    expect(net.exec('cli', ['ip', '-6', 'route', 'show', 'fd78::/64'])).toContain('fd78::/64');
  });

  it('listens on IPv6; a boot script fetched over IPv6 names the controller by the IPv6 address it was reached at', async () => {
    const port = new URL(t.controller.url!).port;
    // `listen: [::]:0` is dual stack: the same port answers on ::1 and on 127.0.0.1.
    const v6 = await fetch(`http://[::1]:${port}/boot.ipxe`, { headers: { 'user-agent': 'iPXE/1.0.0' } });
    expect(v6.status).toBe(200);
    expect(await v6.text()).toContain(`set plinth-base http://[::1]:${port}\n`);
    const v4 = await fetch(`http://127.0.0.1:${port}/boot.ipxe`, { headers: { 'user-agent': 'iPXE/1.0.0' } });
    expect(await v4.text()).toContain(`set plinth-base http://127.0.0.1:${port}\n`);
    expect(readFileSync(join(t.config.dataDir, 'dhcp', 'dnsmasq.conf'), 'utf8')).toContain('dhcp-range=fd78::100,fd78::1ff,slaac,64,300s');
  });
});
