import { execFile } from 'node:child_process';
import { join } from 'node:path';

/**
 * The controller's side of a uftp session (Debian's `uftp`, the sender of the UFTP suite):
 * its command line, the session's own key, and what its log says. uftp does the reliable
 * part (NAKs, passes, rate control) and the encryption; MulticastSessions (multicast.ts)
 * supervises it as it does udp-sender.
 *
 * Every session is encrypted: AES-256-GCM (authenticated, so a forged or altered packet is
 * dropped), keys agreed by ECDH and signed with a P-256 key the controller makes for the
 * session alone. Receivers are told its fingerprint and the server's ID and address in
 * their hello, and uftpd accepts no other server (`-S`), which needs source-specific
 * multicast addresses (232/8). The group is closed (`-H`): only the client IDs the
 * controller handed out may register.
 */

/** Announces go to this address; each session's data to a private one of its own (232.5.5.N). */
export const UFTP_ANNOUNCE_ADDRESS = '232.4.4.1';
/** The one file a session sends, under this name: the agent's symlink to its disk. */
export const UFTP_FILE_NAME = 'image';
/**
 * Group round-trip time: initial 0.5 s (uftp's default), at least 0.1 s. uftp announces 20
 * times (its robustness factor) at three round trips each; with its own minimum (0.01 s) the
 * announces after the first receiver answered take a fraction of a second and a receiver
 * whose uftpd starts a moment later misses the session. 0.1 s gives it about six seconds
 * and costs a few tenths of a second per session.
 */
export const UFTP_GRTT = '0.5:0.1:15';

export interface UftpSenderSettings {
  file: string;
  rateBitsPerSecond: number;
  ttl: number;
  port: number;
  /** The private (data) address: 232.5.5.N. */
  dataAddress: string;
  /** The interface's IPv4 address the session is sent from (receivers expect it). */
  sourceAddress: string;
  serverId: string;
  keyFile: string;
  /** The client IDs that may register (the closed group). */
  clients: readonly string[];
}

export function uftpSenderArgs(s: UftpSenderSettings): string[] {
  return [
    // Timestamped lines on stderr, the status lines (CONNECT, RESULT, STATS) among them.
    '-T',
    '-S',
    '@LOG',
    '-x',
    '2',
    '-R',
    String(Math.max(1, Math.round(s.rateBitsPerSecond / 1000))),
    '-t',
    String(s.ttl),
    '-I',
    s.sourceAddress,
    '-U',
    s.serverId,
    '-p',
    String(s.port),
    '-M',
    UFTP_ANNOUNCE_ADDRESS,
    '-P',
    s.dataAddress,
    '-H',
    s.clients.join(','),
    '-Y',
    'aes256-gcm',
    '-h',
    'sha256',
    '-e',
    'ecdh_ecdsa',
    '-k',
    s.keyFile,
    '-r',
    UFTP_GRTT,
    // The image store's file may be a symlink: send what it points to, under the agent's name.
    '-l',
    '-D',
    UFTP_FILE_NAME,
    s.file,
  ];
}

/** uftp's 32-bit IDs: 0x and eight upper-case hex digits. */
export const uftpId = (n: number): string => `0x${(n >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;

/**
 * Makes the session's P-256 key in `dir` (uftp_keymgt writes it unencrypted in PEM: `dir`
 * must be the controller's alone) and returns its path and fingerprint as uftp prints it.
 */
export async function makeSessionKey(dir: string): Promise<{ keyFile: string; fingerprint: string }> {
  const keyFile = join(dir, 'server-key.pem');
  const said = await run(['uftp_keymgt', '-g', 'ec:prime256v1', keyFile]);
  const fingerprint = /fingerprint: ((?:[0-9A-F]{2}:){19}[0-9A-F]{2})/.exec(said)?.[1];
  if (!fingerprint) throw new Error(`uftp_keymgt printed no fingerprint: ${said.trim().slice(0, 200)}`);
  return { keyFile, fingerprint };
}

/** The first IPv4 address of `iface` (run through `prefix`: a network namespace in tests). */
export async function interfaceAddress(iface: string, prefix: readonly string[] = []): Promise<string> {
  const said = await run([...prefix, 'ip', '-o', '-4', 'addr', 'show', 'dev', iface]);
  const address = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(said)?.[1];
  if (!address) throw new Error(`${iface} has no IPv4 address`);
  return address;
}

/** What one line of uftp's log tells the session. */
export type UftpEvent =
  | { kind: 'registered' }
  | { kind: 'sending' }
  | { kind: 'file'; blocks: number }
  | { kind: 'naks'; count: number }
  | { kind: 'received' }
  | null;

export function parseUftpLine(line: string): UftpEvent {
  // Status lines (-S @LOG) come bare; log lines after a timestamp and the group ID.
  if (line.startsWith('CONNECT;success;')) return { kind: 'registered' };
  if (/^RESULT;[^;]*;[^;]*;\d+KB;(copy|overwrite);/.test(line)) return { kind: 'received' };
  const m = /\]: (.*)$/.exec(line);
  const text = m?.[1] ?? line;
  if (text === 'Sending file') return { kind: 'sending' };
  const blocks = /^Bytes: \d+\s+Blocks: (\d+)/.exec(text);
  if (blocks) return { kind: 'file', blocks: Number(blocks[1]) };
  const naks = /^Got (\d+) NAKs for section/.exec(text);
  if (naks) return { kind: 'naks', count: Number(naks[1]) };
  return null;
}

/** What uftp's exit status means (man uftp, EXIT STATUS). */
export function uftpExitMeaning(code: number): string {
  return (
    {
      1: 'an invalid command line parameter',
      2: 'the network could not be set up',
      3: 'the key could not be read',
      7: 'no receiver answered its announce',
      8: 'no receiver answered its file information',
      9: 'every receiver dropped out or aborted',
      10: 'no receiver received the image',
    }[code] ?? `exit status ${code}`
  );
}

function run(argv: readonly string[]): Promise<string> {
  const [command, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(command!, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${argv.join(' ')}: ${(stderr || error.message).trim().split('\n')[0]}`));
      else resolve(`${stdout}${stderr}`);
    });
  });
}
