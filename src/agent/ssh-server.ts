import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Exec } from './steps/exec.js';
import type { HoldParams, SshReport } from '../protocol/agent.js';

/**
 * The installer's SSH server for installer and rescue runs: Debian's dropbear, letting in
 * root with the run's keys only (no passwords, no port forwarding), with a host key made at
 * this boot. What it reports (port, host keys, addresses) goes to the controller, which
 * serves it to clients as known_hosts lines.
 */
export interface SshServerOptions {
  exec: Exec;
  /** Where the host key and pid file go (a tmpfs in the installer). */
  stateDir?: string;
  /** Root's home: its .ssh/authorized_keys gets the run's keys. */
  rootHome?: string;
  port?: number;
  log: (line: string) => void;
}

export const SSH_PORT = 22;

/** The public key line from `dropbearkey -y` output ("Public key portion is:" then the key). */
export function publicKeyOf(dropbearkeyOutput: string): string {
  const line = dropbearkeyOutput.split('\n').find((l) => /^(ssh|ecdsa)-\S+ \S+/.test(l));
  if (!line) throw new Error('dropbearkey printed no public key');
  // Only type and key: the comment (root@hostname) says nothing a client needs.
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** The authorized_keys file for the run's keys: one a line. */
export const authorizedKeysFile = (p: HoldParams): string => p.authorizedKeys.map((k) => k.trim()).join('\n') + '\n';

/** Addresses other machines may reach this one at: global IPv4 and IPv6 addresses, no loopback or link-local. */
export function reachableAddresses(ifaces = networkInterfaces()): string[] {
  const out: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv6' && /^fe80:/i.test(a.address)) continue;
      out.push(a.address);
    }
  }
  // IPv4 first: the address most clients will use.
  return out.sort((x, y) => Number(x.includes(':')) - Number(y.includes(':')));
}

export async function startSshServer(params: HoldParams, o: SshServerOptions): Promise<SshReport> {
  const stateDir = o.stateDir ?? '/run/plinth/ssh';
  const home = o.rootHome ?? '/root';
  const port = o.port ?? SSH_PORT;
  await mkdir(`${home}/.ssh`, { recursive: true, mode: 0o700 });
  await chmod(home, 0o700);
  await chmod(`${home}/.ssh`, 0o700);
  await writeFile(`${home}/.ssh/authorized_keys`, authorizedKeysFile(params), { mode: 0o600 });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const hostKey = `${stateDir}/host_ed25519`;
  // A fresh key at each start: nothing from an earlier boot (or the image) is reused.
  await rm(hostKey, { force: true });
  await o.exec('dropbearkey', ['-t', 'ed25519', '-f', hostKey]);
  const hostKeys = [publicKeyOf((await o.exec('dropbearkey', ['-y', '-f', hostKey])).stdout)];
  // -s: no password logins; -j -k: no port forwarding; -r: this host key only; daemonises itself.
  await o.exec('dropbear', ['-r', hostKey, '-p', String(port), '-s', '-j', '-k', '-P', `${stateDir}/dropbear.pid`]);
  await listening(port);
  o.log(`ssh: dropbear listening on port ${port}, host key ${hostKeys[0]!.slice(0, 40)}…`);
  return { port, hostKeys, addresses: reachableAddresses() };
}

/** Waits until something accepts connections on the port (dropbear forks before it listens). */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`dropbear is not listening on port ${port} after 10 s`);
}
