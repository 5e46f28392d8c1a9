/**
 * A stand-in for the agent, for end-to-end tests of the installer image: a single ESM file
 * that reads what the real agent reads (SMBIOS serial, disks, the kernel command line) and
 * POSTs it as JSON to `${plinth.url}/hello`.
 *
 * Its first run exits with status 3 so that /init's restart is exercised; the second run
 * reports again and powers the machine off, which ends the QEMU process.
 */
export interface TestAgentReport {
  variant: string;
  attempt: number;
  uptimeSeconds: number;
  cmdline: string;
  serial: string;
  /** `lsblk -J -b -d` output, parsed by the test. */
  lsblk: string;
  nodeVersion: string;
  resolvConf: string;
  efivarsMounted: boolean;
  /** /init's log: milestones and finer steps, each with the uptime. */
  initLog: string;
}

export function testAgentSource(variant: string): string {
  return `// Plinth installer test agent (variant ${variant})
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const VARIANT = ${JSON.stringify(variant)};
const cmdline = readFileSync('/proc/cmdline', 'utf8').trim();
const param = (name) => cmdline.split(/\\s+/).find((word) => word.startsWith(name + '='))?.slice(name.length + 1);
const run = (command, args) => {
  try {
    return execFileSync(command, args, { encoding: 'utf8' });
  } catch (e) {
    return 'ERROR: ' + e.message;
  }
};

// /run is a tmpfs: the count survives restarts of the agent, not reboots.
const marker = '/run/plinth-test-agent.attempts';
const attempt = (existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : 0) + 1;
writeFileSync(marker, String(attempt));

const report = {
  variant: VARIANT,
  attempt,
  uptimeSeconds: Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]),
  cmdline,
  serial: run('dmidecode', ['-s', 'system-serial-number']).trim(),
  lsblk: run('lsblk', ['-J', '-b', '-d']),
  nodeVersion: process.version,
  resolvConf: readFileSync('/etc/resolv.conf', 'utf8'),
  efivarsMounted: readFileSync('/proc/mounts', 'utf8').includes(' efivarfs '),
  initLog: existsSync('/run/plinth/init.log') ? readFileSync('/run/plinth/init.log', 'utf8') : '',
};
const response = await fetch(param('plinth.url') + '/hello', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(report),
});
console.log('test agent: hello answered ' + response.status + ' (attempt ' + attempt + ')');
if (attempt === 1) {
  console.log('test agent: exiting with status 3 so that /init restarts me');
  process.exit(3);
}
console.log('test agent: powering off');
execFileSync('poweroff');
`;
}
