import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeExec, type Exec } from './exec.js';
import { interfaceTowards, MulticastError } from './multicast-receive.js';
import type { MulticastReceive } from './protocol.js';

/**
 * Receiving a uftp session (Debian's `uftpd`, the receiver of the UFTP suite). uftp writes a
 * file, seeking to the offsets of retransmitted blocks, so it cannot feed the streaming
 * writer: uftpd writes the image onto the disk itself, and the agent then checks the disk
 * against the image's chunk index and fetches over HTTP what is missing or wrong
 * (write-image.ts, as a differential write does).
 *
 * uftpd's destination is a directory: the file it is sent (`image`) is a symlink there to a
 * device node of the disk. The node sits on a tmpfs of its own sized as the disk, because
 * uftpd refuses a file larger than the free space of the file system the name leads to
 * (the installer's /dev is a devtmpfs of half the RAM).
 *
 * uftpd accepts only the controller's session: the server's ID, address and key fingerprint
 * are in its server list (`-S`), and it takes encrypted sessions only (`-E`).
 */
export interface DiskReceiver {
  /** What the receiver is, for the log. */
  readonly describe: string;
  /** Writes the image onto the disk at `device`; resolves once the session delivered all of it, else throws MulticastError. */
  receive(device: string, diskBytes: number): Promise<void>;
}

export interface UftpReceiverOptions {
  /** Runs uftpd through this command prefix (a network namespace in tests). */
  prefix?: readonly string[];
  /** The interface to listen on; default: the one the route to `towards` leaves by. */
  interface?: string;
  /** The controller's address. */
  towards?: string;
  log: (line: string) => void;
  exec?: Exec;
}

/** What the session's file is called in uftpd's destination (the controller sends it so). */
const FILE_NAME = 'image';
/** After uftpd received the file, the controller's confirmation of the group is awaited this long. */
const CONFIRM_MS = 5000;

type UftpParams = MulticastReceive & { uftp: NonNullable<MulticastReceive['uftp']> };

export function uftpdArgs(p: UftpParams, paths: { destination: string; servers: string }, iface: string | null): string[] {
  return [
    // Foreground, log to stderr; no DNS lookup of the server; encrypted sessions only.
    '-d',
    '-q',
    '-E',
    '-x',
    '2',
    // A 4 MiB socket buffer (the kernel caps it at net.core.rmem_max): a busy receiver loses
    // fewer packets, so fewer are sent again.
    '-B',
    '4194304',
    '-p',
    String(p.portbase),
    '-M',
    p.uftp.address,
    '-U',
    p.uftp.clientId,
    '-S',
    paths.servers,
    // The client's own key for the ECDH exchange, made now and never kept.
    '-K',
    'ec:prime256v1',
    '-D',
    paths.destination,
    ...(iface ? ['-I', iface] : []),
  ];
}

/** uftpd's server list: the one server it accepts (ID|address|fingerprint). */
export const uftpServerList = (p: UftpParams): string => `${p.uftp.serverId}|${p.uftp.serverAddress}|${p.uftp.fingerprint}\n`;

export function uftpReceiver(p: MulticastReceive, o: UftpReceiverOptions): DiskReceiver {
  if (!p.uftp) throw new MulticastError(`multicast session ${p.session}: uftp parameters missing`);
  const params = p as UftpParams;
  const exec = o.exec ?? nodeExec();
  const [command, ...prefixArgs] = [...(o.prefix ?? []), 'uftpd'];
  return {
    describe: `multicast session ${p.session} (uftpd, port ${p.portbase}, client ${params.uftp.clientId})`,
    async receive(device, diskBytes) {
      const dir = await fsp.mkdtemp(join(tmpdir(), 'plinth-uftpd-'));
      const nodes = join(dir, 'dev');
      const destination = join(dir, 'in');
      const servers = join(dir, 'servers');
      let mounted = false;
      try {
        await Promise.all([fsp.mkdir(nodes), fsp.mkdir(destination), fsp.writeFile(servers, uftpServerList(params))]);
        const { rdev } = await fsp.stat(device, { bigint: true });
        // Linux's dev_t: the major's low 12 bits at 8-19, the minor's low 8 bits at 0-7, the rest above 32.
        const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
        const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
        await exec('mount', ['-t', 'tmpfs', '-o', `size=${diskBytes},mode=0700`, 'plinth-uftpd', nodes]);
        mounted = true;
        await exec('mknod', ['-m', '0600', join(nodes, 'disk'), 'b', String(major), String(minor)]);
        await fsp.symlink(join(nodes, 'disk'), join(destination, FILE_NAME));
        const iface = o.interface ?? (o.towards ? await interfaceTowards(o.towards, o.prefix) : null);
        if (iface) o.log(`multicast: uftpd listening on ${iface}`);
        await runUftpd(command!, [...prefixArgs, ...uftpdArgs(params, { destination, servers }, iface)], p, o.log);
      } finally {
        if (mounted) await exec('umount', ['-l', nodes]).catch(() => undefined);
        await fsp.rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Runs uftpd until the session delivered the file (resolves) or failed (MulticastError);
 * uftpd is a daemon and is stopped here. It gives up when no session is announced within
 * `startTimeoutSeconds`, or when uftpd says nothing for `receiveTimeoutSeconds` once one was
 * (it logs each section; a receiver the server dropped waits for the next announce, silent).
 */
function runUftpd(command: string, args: string[], p: Pick<MulticastReceive, 'startTimeoutSeconds' | 'receiveTimeoutSeconds'>, log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let outcome: { error: string | null } | null = null;
    let received = false;
    let lastLines: string[] = [];
    const end = (error: string | null) => {
      if (outcome) return;
      outcome = { error };
      clearTimeout(startTimer);
      clearTimeout(confirmTimer);
      clearTimeout(stallTimer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    const startTimer = setTimeout(() => end(`no uftp session was announced to this machine within ${p.startTimeoutSeconds} s`), p.startTimeoutSeconds * 1000);
    let confirmTimer: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    let announced = false;
    const rejections = new Set<string>();
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const raw of lines) {
        // "2026/12/03 20:13:07.718510: [17776406/00:0001]: File transfer complete"
        const line = raw.replace(/^[\d/]+ [\d:.]+: (\[[^\]]*\]: )?/, '').trim();
        if (!line) continue;
        lastLines = [...lastLines.slice(-1), line];
        if (line.startsWith('Received request from')) {
          announced = true;
          clearTimeout(startTimer);
        }
        if (announced && !outcome) {
          clearTimeout(stallTimer);
          stallTimer = setTimeout(() => end(`uftpd said nothing for ${p.receiveTimeoutSeconds} s after: ${line}`), p.receiveTimeoutSeconds * 1000);
        }
        if (line === 'File transfer complete') {
          received = true;
          // The group's confirmation may be lost: the file is on the disk, which is checked anyway.
          confirmTimer = setTimeout(() => end(null), CONFIRM_MS);
        } else if (line === 'Group file transfer confirmed') end(received ? null : 'the session ended without sending the image');
        else if (/abort|timed out/i.test(line)) end(`uftpd: ${line}`);
        else if (/^(Rejecting|Failed to verify|Invalid)/.test(line) && !rejections.has(line)) {
          // Another server (or a forged packet) on the segment: refused, and said once.
          rejections.add(line);
          log(`multicast: uftpd refused: ${line}`);
        }
      }
    });
    child.once('error', (e) => {
      end(`uftpd did not start: ${e.message}`);
      reject(new MulticastError(outcome!.error!));
    });
    child.once('close', (code, signal) => {
      if (!outcome) end(`uftpd exited with ${code ?? signal}${lastLines.length ? `: ${lastLines.join('; ')}` : ''}`);
      if (outcome!.error) reject(new MulticastError(outcome!.error));
      else resolve();
    });
  });
}
