import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { PlinthError } from '../core/errors.js';
import { dnsmasqArgs, dnsmasqConfig, type DnsmasqPlan } from './dnsmasq-config.js';
import { DnsmasqLogReader, type DhcpEvent } from './dnsmasq-log.js';
import { Supervisor } from './supervisor.js';
import { DhcpTrace } from './dhcp-trace.js';
import { syncHostsDir } from './hosts.js';

export interface DhcpServiceOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /** The mode's settings (`serverAddress`: Plinth's address on the interface, see `interfaceAddress`). */
  plan: Omit<DnsmasqPlan, 'hostsDir' | 'leaseFile' | 'bootUrl'> & { bootUrl: (serverAddress: string) => string };
  /** Where the configuration, leases and hosts directory live (DATA_DIR/dhcp). */
  dir: string;
  /** The dnsmasq program and any wrapper before it (tests: `nsenter --net=/run/netns/NS -- dnsmasq`). */
  command: string[];
  /** How often the hosts directory follows the inventory. */
  hostsSyncMs?: number;
  /** Called after each event is in the trace (tests wait on it). */
  onEvent?: (e: DhcpEvent, outcome: 'recorded' | 'pending' | 'failed') => void;
}

/** The netmask of an interface's first IPv4 address, or null when this namespace has no such interface. */
export function interfaceNetmask(name: string): string | null {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.netmask ?? null;
}

/**
 * Plinth's address on an interface of this network namespace, of the family DHCP is served in:
 * the first IPv4 address, or the first IPv6 address that is not link-local (a link-local one
 * is no use in a URL); an error naming dhcp.interface when it has none.
 */
export function interfaceAddress(name: string, family: 4 | 6 = 4): string {
  const address = networkInterfaces()[name]?.find((a) => (family === 4 ? a.family === 'IPv4' : a.family === 'IPv6' && !/^fe[89ab]/i.test(a.address)))?.address;
  if (!address) {
    const what = family === 4 ? 'IPv4 address' : 'IPv6 address other than link-local (dhcp.range is IPv6)';
    throw new PlinthError('validation', `invalid configuration dhcp.interface: '${name}' has no ${what} on this host, so dnsmasq could not point PXE clients at Plinth`, {
      details: { field: 'dhcp.interface' },
    });
  }
  return address;
}

/** The first directory on the way to `path` that other users may not enter, or null. */
async function untraversable(path: string): Promise<string | null> {
  const chain: string[] = [];
  for (let d = path; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    if (((await stat(d)).mode & 0o001) === 0) return d;
  }
  return null;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * A dnsmasq left running by a controller of this data directory that was killed before it
 * could stop it (SIGKILL, OOM): its pid file names it, and its command line names this data
 * directory's configuration file (so a pid reused by another program is left alone). It holds
 * the DHCP ports, so the new one could not start: it is stopped (SIGTERM, then SIGKILL after
 * `killAfterMs`). Returns the pid stopped, or null.
 */
export async function stopStaleDnsmasq(pidFile: string, confFile: string, o: { log: Logger; killAfterMs?: number }): Promise<number | null> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  let stopped: number | null = null;
  if (cmdline.includes(`--conf-file=${confFile}`) && alive(pid)) {
    o.log.warn({ pid, pidFile }, `stopping dnsmasq ${pid}, left running by a controller of this data directory that did not stop it`);
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + (o.killAfterMs ?? 5000);
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
    stopped = pid;
  }
  await rm(pidFile, { force: true });
  return stopped;
}

/**
 * Plinth's DHCP service (dhcp.mode proxy or full): writes dnsmasq's configuration, keeps
 * dnsmasq running (restarted with backoff when it dies, stopped with the controller), keeps
 * its hosts directory in step with the inventory, and turns its log into `dhcp` stages of the
 * boot trace.
 */
export class DhcpService {
  private readonly reader = new DnsmasqLogReader();
  readonly trace: DhcpTrace;
  private supervisor: Supervisor | null = null;
  private hostsTimer: NodeJS.Timeout | null = null;
  private queue: Promise<void> = Promise.resolve();
  private hostsSync: Promise<void> = Promise.resolve();

  constructor(private readonly o: DhcpServiceOptions) {
    this.trace = new DhcpTrace({ store: o.store, clock: o.clock });
  }

  get hostsDir(): string {
    return join(this.o.dir, 'hosts');
  }

  get dnsmasqPid(): number | null {
    return this.supervisor?.pid ?? null;
  }

  /** Where the running dnsmasq's pid is kept, for the next start after a controller that was killed. */
  get pidFile(): string {
    return join(this.o.dir, 'dnsmasq.pid');
  }

  async start(): Promise<{ serverAddress: string; confFile: string }> {
    const { serverAddress } = this.o.plan;
    const conf = dnsmasqConfig({ ...this.o.plan, serverAddress, bootUrl: this.o.plan.bootUrl(serverAddress), hostsDir: this.hostsDir, leaseFile: join(this.o.dir, 'dnsmasq.leases') });
    await mkdir(this.o.dir, { recursive: true, mode: 0o755 });
    await this.syncHosts();
    const closed = await untraversable(this.hostsDir);
    if (closed) {
      this.o.log.warn({ dir: closed }, `dnsmasq runs as an unprivileged user and cannot enter ${closed}: known machines get no host names (chmod o+x ${closed})`);
    }
    const confFile = join(this.o.dir, 'dnsmasq.conf');
    await stopStaleDnsmasq(this.pidFile, confFile, { log: this.o.log });
    await writeFile(confFile, conf, { mode: 0o640 });
    this.supervisor = new Supervisor({
      argv: [...this.o.command, ...dnsmasqArgs(confFile)],
      onLine: (line) => this.handle(this.reader.line(line), line),
      onQuiet: () => this.handle(this.reader.flush()),
      log: (event, fields) => {
        if (event === 'started') {
          this.o.log.info(fields, `dnsmasq ${event}`);
          // NOTE: the wrapper before dnsmasq (nsenter --net) execs it: the child's pid is dnsmasq's.
          void writeFile(this.pidFile, `${String(fields['pid'])}\n`).catch((err: unknown) => this.o.log.warn({ err }, 'could not write the dnsmasq pid file'));
        } else this.o.log.warn(fields, `dnsmasq ${event}`);
      },
    });
    this.supervisor.start();
    this.hostsTimer = setInterval(() => void this.syncHosts(), this.o.hostsSyncMs ?? 30_000);
    this.hostsTimer.unref();
    return { serverAddress, confFile };
  }

  /** Brings the hosts directory in step with the inventory; SIGHUP when dnsmasq must forget entries. One at a time. */
  syncHosts(): Promise<void> {
    this.hostsSync = this.hostsSync.then(() => this.syncHostsNow());
    return this.hostsSync;
  }

  private async syncHostsNow(): Promise<void> {
    try {
      const r = await syncHostsDir(this.o.store, this.hostsDir, { addresses: this.o.plan.mode === 'full' });
      const pid = this.supervisor?.pid;
      if (r.reloadNeeded && pid) process.kill(pid, 'SIGHUP');
    } catch (e) {
      this.o.log.warn({ err: e }, 'could not update the DHCP hosts directory');
    }
  }

  private handle(events: DhcpEvent[], line?: string): void {
    // dnsmasq's own lines (start, errors) are worth seeing; per-packet detail is debug.
    if (line !== undefined) {
      if (/^dnsmasq-dhcp\[\d+\]: \d+ /.test(line)) this.o.log.debug({ dnsmasq: line.slice(0, 512) }, 'dnsmasq');
      else this.o.log.info({ dnsmasq: line.slice(0, 512) }, 'dnsmasq');
    }
    for (const e of events) {
      // One at a time, in log order: a PXE ROM's answer before iPXE's.
      this.queue = this.queue.then(async () => {
        try {
          const outcome = await this.trace.record(e);
          this.o.onEvent?.(e, outcome);
        } catch (err) {
          // The trace is a diagnostic: DHCP keeps working when it cannot be written.
          this.o.log.warn({ err, mac: e.mac }, 'could not record a DHCP event in the boot trace');
          this.o.onEvent?.(e, 'failed');
        }
      });
    }
  }

  async stop(): Promise<void> {
    if (this.hostsTimer) clearInterval(this.hostsTimer);
    this.hostsTimer = null;
    await this.supervisor?.stop();
    await rm(this.pidFile, { force: true });
    await this.queue;
  }
}
