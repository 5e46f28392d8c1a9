import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../e2e.js';
import type { TestNetwork } from './netns.js';

/**
 * A stand-in for a site's own DHCP server (the one Plinth's proxy mode sits next to): a plain
 * dnsmasq in its own namespace of a test network, handing out addresses from `range` and
 * nothing about booting. Resolves once it listens on port 67.
 */
export interface SiteDhcp {
  stop(): Promise<void>;
}

export async function startSiteDhcp(net: TestNetwork, opts: { member?: string; range: string; router: string }): Promise<SiteDhcp> {
  const member = opts.member ?? 'site';
  const dir = mkdtempSync(join(tmpdir(), 'plinth-site-dhcp-'));
  const [first, last] = opts.range.split(',');
  writeFileSync(
    join(dir, 'site.conf'),
    ['port=0', 'interface=eth0', 'bind-interfaces', `dhcp-range=${first},${last},255.255.255.0,5m`, `dhcp-option=3,${opts.router}`, `dhcp-leasefile=${join(dir, 'leases')}`, ''].join('\n'),
  );
  const child = spawn(...net.command(member, ['setpriv', '--pdeathsig', 'KILL', '--', 'dnsmasq', '--keep-in-foreground', `--conf-file=${join(dir, 'site.conf')}`, '--pid-file=', '--log-facility=-']), {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill();
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('site dnsmasq listening', 20_000, async () => (net.exec(member, ['ss', '-Hlun']).includes(':67 ') ? true : undefined));
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}
