import { execFile, spawn } from 'node:child_process';
import type { MulticastReceive } from './protocol.js';

/**
 * Receiving an image from a multicast session with Debian's `udp-receiver` (udpcast): it
 * joins the session the controller's `udp-sender` announces on the segment and writes the
 * image to its stdout, which feeds the same verifying writer as the HTTP download
 * (write-image.ts). udpcast does the reliable part (NAKs, retransmits, rate control).
 *
 * A receiver that finds no session in time, stalls, or exits with an error ends its stream
 * with a MulticastError; the writer then completes the image over HTTP from where it got.
 */
export interface ImageChunkSource {
  /** What the source is, for the log ("multicast session S on port P"). */
  readonly describe: string;
  /** The image's bytes from offset 0, in order; throws MulticastError when the source gives up. */
  open(): AsyncIterable<Uint8Array>;
}

export class MulticastError extends Error {
  override name = 'MulticastError';
}

export interface UdpReceiverOptions {
  /** Runs udp-receiver through this command prefix (a network namespace in tests: `nsenter --net=/run/netns/NS --`). */
  prefix?: readonly string[];
  /** The interface to listen on; default: the one the route to `towards` leaves by, else the one udp-receiver picks (the first one up that is not loopback). */
  interface?: string;
  /** The controller's address: the session is on the segment the route to it leaves by (a machine with several NICs). */
  towards?: string;
  log: (line: string) => void;
}

/** udp-receiver's stderr ends with a line per event; only the last few are kept for the message. */
const STDERR_KEPT = 4096;

export function udpReceiverSource(p: MulticastReceive, o: UdpReceiverOptions): ImageChunkSource {
  const args = [
    '--nokbd',
    '--no-progress',
    '--portbase',
    String(p.portbase),
    '--start-timeout',
    String(p.startTimeoutSeconds),
    '--receive-timeout',
    String(p.receiveTimeoutSeconds),
    ...(o.interface ? ['--interface', o.interface] : []),
  ];
  const [command, ...prefixArgs] = [...(o.prefix ?? []), 'udp-receiver'];
  return {
    describe: `multicast session ${p.session} (udp-receiver, port ${p.portbase})`,
    async *open() {
      const via = o.interface ?? (o.towards ? await interfaceTowards(o.towards, o.prefix) : null);
      if (via) o.log(`multicast: receiving on ${via}`);
      const child = spawn(command!, [...prefixArgs, ...args, ...(via && !o.interface ? ['--interface', via] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEPT)));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('close', (code, signal) => resolve({ code, signal }));
      });
      let finished = false;
      try {
        for await (const chunk of child.stdout) yield chunk as Buffer;
        const end = await exited;
        finished = true;
        if (end.error) throw new MulticastError(`udp-receiver did not start: ${end.error.message}`);
        if (end.code !== 0) {
          const said = stderr.replaceAll('\r', '\n').split('\n').map((l) => l.trim()).filter(Boolean).slice(-2).join('; ');
          throw new MulticastError(`udp-receiver exited with ${end.code ?? end.signal}${said ? `: ${said}` : ''}`);
        }
      } finally {
        // The reader stopped early (a failed write, a size mismatch): the receiver goes too.
        if (!finished && child.exitCode === null) child.kill('SIGTERM');
      }
    },
  };
}

/** The interface the route to `host` (an IP address or name) leaves by, as `ip route get` says; null when it cannot say. */
export function interfaceTowards(host: string, prefix: readonly string[] = []): Promise<string | null> {
  const [command, ...args] = [...prefix, 'ip', '-o', 'route', 'get', host];
  return new Promise((resolve) => {
    execFile(command!, args, { timeout: 5000 }, (error, stdout) => resolve(error ? null : (/\bdev (\S+)/.exec(stdout)?.[1] ?? null)));
  });
}
