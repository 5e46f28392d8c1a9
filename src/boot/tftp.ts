import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';

/**
 * A read-only TFTP server (RFC 1350) with option negotiation for block size, transfer size
 * and timeout (RFC 2347, 2348, 2349). It exists so that PXE ROMs that only speak TFTP can
 * chain-load iPXE (undionly.kpxe, ipxe.efi), which then speaks HTTP to the boot service.
 * Every transfer gets its own socket (its TID); blocks are resent on timeout.
 *
 * Anyone on the provisioning network can send it anything, so: every datagram goes through
 * `decodePacket`, which returns a value for any bytes and never throws; no socket handler
 * lets an exception out (one would end the whole controller); transfers are bounded in
 * number (`maxTransfers`) and in lifetime (`transferTimeoutMs`), whatever timeouts a client
 * negotiates; and every socket is bound to the configured address.
 */
export interface TftpServerOptions {
  root: string;
  host: string;
  port: number;
  /** Per-block timeout when the client does not negotiate one. */
  timeoutMs?: number;
  retries?: number;
  /** Transfers under way at once; a read request beyond them is answered with an ERROR. */
  maxTransfers?: number;
  /** Total lifetime of one transfer, from its request to its last ACK. */
  transferTimeoutMs?: number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export const TFTP_DEFAULTS = { timeoutMs: 1000, retries: 5, maxTransfers: 128, transferTimeoutMs: 300_000 } as const;

const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;
const ERR = { UNDEFINED: 0, NOT_FOUND: 1, ACCESS: 2, ILLEGAL: 4, UNKNOWN_TID: 5 } as const;

/** RFC 2347: a request, options included, fits in 512 octets. */
const MAX_REQUEST_BYTES = 512;
const MAX_BLKSIZE = 65464;

export type TftpPacket =
  | { op: 'rrq' | 'wrq'; file: string; mode: string; options: Map<string, string> }
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: Map<string, string> };

/** What `decodePacket` makes of any bytes: a packet, or why they are not one. */
export type Decoded = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

const bad = (reason: string): Decoded => ({ ok: false, reason });
const good = (packet: TftpPacket): Decoded => ({ ok: true, packet });

/**
 * NUL-terminated strings of printable ASCII, or null: a missing final NUL or any other byte
 * makes the whole field list malformed (file names are logged and echoed in ERROR packets).
 */
function nulTerminated(b: Buffer): string[] | null {
  if (b.length === 0 || b[b.length - 1] !== 0) return null;
  for (const byte of b) if (byte !== 0 && (byte < 0x20 || byte > 0x7e)) return null;
  return b.subarray(0, b.length - 1).toString('ascii').split('\0');
}

/** Option/value pairs (RFC 2347), names case-insensitive; null for an odd count or an empty name. */
function optionPairs(words: string[]): Map<string, string> | null {
  if (words.length % 2 !== 0) return null;
  const options = new Map<string, string>();
  for (let i = 0; i < words.length; i += 2) {
    if (words[i] === '') return null;
    options.set(words[i]!.toLowerCase(), words[i + 1]!);
  }
  return options;
}

/** Decodes one datagram. Total: it answers for every input, and never throws. */
export function decodePacket(msg: Buffer): Decoded {
  if (msg.length < 2) return bad('shorter than an opcode');
  const op = msg.readUInt16BE(0);
  switch (op) {
    case OP.RRQ:
    case OP.WRQ: {
      if (msg.length > MAX_REQUEST_BYTES) return bad(`request longer than ${MAX_REQUEST_BYTES} bytes`);
      const words = nulTerminated(msg.subarray(2));
      if (words === null || words.length < 2) return bad('request is not NUL-terminated printable fields');
      const [file, mode, ...rest] = words as [string, string, ...string[]];
      if (file === '') return bad('empty file name');
      const m = mode.toLowerCase();
      if (m !== 'octet' && m !== 'netascii') return bad(`unsupported mode '${mode}'`);
      const options = optionPairs(rest);
      if (options === null) return bad('malformed options');
      return good({ op: op === OP.RRQ ? 'rrq' : 'wrq', file, mode: m, options });
    }
    case OP.DATA:
      return msg.length >= 4 ? good({ op: 'data', block: msg.readUInt16BE(2), data: msg.subarray(4) }) : bad('DATA shorter than 4 bytes');
    case OP.ACK:
      return msg.length === 4 ? good({ op: 'ack', block: msg.readUInt16BE(2) }) : bad('ACK is not 4 bytes');
    case OP.ERROR: {
      if (msg.length < 4) return bad('ERROR shorter than 4 bytes');
      // The peer's message is only logged: keep what is printable, drop the rest.
      const text = msg.subarray(4, 4 + 256).toString('latin1').replace(/\0[\s\S]*$/, '').replace(/[^\x20-\x7e]/g, '?');
      return good({ op: 'error', code: msg.readUInt16BE(2), message: text });
    }
    case OP.OACK: {
      const words = nulTerminated(msg.subarray(2));
      const options = words === null ? null : optionPairs(words);
      return options === null ? bad('malformed OACK') : good({ op: 'oack', options });
    }
    default:
      return bad(`unknown opcode ${op}`);
  }
}

function errorPacket(code: number, message: string): Buffer {
  const msg = Buffer.from(message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200), 'ascii');
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt16BE(OP.ERROR, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  return b;
}

/** Sends without ever throwing: a closed socket or an unroutable peer only loses the datagram. */
function sendTo(socket: Socket, packet: Buffer, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      socket.send(packet, port, address, () => resolve());
    } catch {
      resolve();
    }
  });
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}

/** One transfer: its socket, and why it must stop once it must. */
interface Transfer {
  socket: Socket | null;
  ended: string | null;
  /** The ERROR code the client is told, or null when it knows already (it aborted). */
  errorCode: number | null;
  /** Wakes the transfer's loop when it waits for an ACK. */
  wake: () => void;
  done: Promise<void>;
}

export class TftpServer {
  private socket: Socket | null = null;
  private readonly transfers = new Set<Transfer>();
  private readonly o: Required<Omit<TftpServerOptions, 'log'>> & { log: NonNullable<TftpServerOptions['log']> };
  private rootReal = '';

  constructor(options: TftpServerOptions) {
    this.o = { ...TFTP_DEFAULTS, log: () => undefined, ...options };
  }

  private get family(): 'udp4' | 'udp6' {
    return this.o.host.includes(':') ? 'udp6' : 'udp4';
  }

  async start(): Promise<{ host: string; port: number }> {
    this.rootReal = await realpath(this.o.root);
    const socket = createSocket(this.family);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.o.port, this.o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // After bind, a socket error (ICMP unreachable reported by the kernel…) is logged, never thrown.
    socket.on('error', (e) => this.o.log('tftp socket error', { err: e.message }));
    socket.on('message', (msg, rinfo) => this.onListenMessage(socket, msg, rinfo));
    this.socket = socket;
    const a = socket.address();
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const pending = [...this.transfers];
    for (const t of pending) this.end(t, 'server stopping', ERR.UNDEFINED);
    await Promise.allSettled(pending.map((t) => t.done));
    await new Promise<void>((r) => (this.socket ? this.socket.close(() => r()) : r()));
    this.socket = null;
  }

  /** Transfers under way (for tests and the log). */
  get activeTransfers(): number {
    return this.transfers.size;
  }

  /**
   * Resolves a requested name inside the root, or null if it would climb out of it. Links
   * inside the root are followed: the root is the operator's (Debian's /usr/lib/ipxe/ipxe.efi
   * is itself a link to /boot/ipxe.efi).
   */
  private resolve(file: string): string | null {
    const clean = normalize(file.replace(/\\/g, '/').replace(/^\/+/, ''));
    if (clean === '..' || clean.startsWith(`..${sep}`) || clean.split(sep).includes('..')) return null;
    const candidate = join(this.rootReal, clean);
    return candidate === this.rootReal || candidate.startsWith(this.rootReal + sep) ? candidate : null;
  }

  /**
   * The listen port. Anything but a well-formed read request is answered from here with an
   * ERROR, without opening a socket, so a flood of junk costs no descriptors. ERROR packets
   * are never answered (RFC 1350: two servers would otherwise answer each other forever).
   */
  private onListenMessage(socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    try {
      const d = decodePacket(msg);
      if (msg.length >= 2 && msg.readUInt16BE(0) === OP.ERROR) return;
      const reply = (code: number, text: string) => void sendTo(socket, errorPacket(code, text), rinfo.port, rinfo.address);
      if (!d.ok) return reply(ERR.ILLEGAL, `illegal TFTP operation: ${d.reason}`);
      if (d.packet.op === 'wrq') return reply(ERR.ACCESS, 'this server is read-only');
      if (d.packet.op !== 'rrq') return reply(ERR.ILLEGAL, 'illegal TFTP operation: expected a read request');
      if (this.transfers.size >= this.o.maxTransfers) {
        this.o.log('tftp busy', { client: rinfo.address, transfers: this.transfers.size });
        return reply(ERR.UNDEFINED, 'too many transfers under way, try again later');
      }
      this.begin(d.packet, rinfo);
    } catch (e) {
      this.o.log('tftp request failed', { client: rinfo.address, err: (e as Error).message });
    }
  }

  /** Takes a transfer slot now (so the bound holds), then serves the request on its own socket. */
  private begin(req: { file: string; options: Map<string, string> }, rinfo: RemoteInfo): void {
    const t: Transfer = { socket: null, ended: null, errorCode: null, wake: () => undefined, done: Promise.resolve() };
    this.transfers.add(t);
    const deadline = setTimeout(() => this.end(t, 'transfer timed out', ERR.UNDEFINED), this.o.transferTimeoutMs);
    t.done = this.serve(t, req, rinfo)
      .catch((e: unknown) => this.o.log('tftp transfer failed', { file: req.file, client: rinfo.address, err: (e as Error).message }))
      .finally(() => {
        clearTimeout(deadline);
        if (t.socket) closeQuietly(t.socket);
        this.transfers.delete(t);
      });
  }

  /** Stops a transfer: its loop sees `ended`, sends the ERROR if there is one to send, and returns. The first reason wins. */
  private end(t: Transfer, why: string, errorCode: number | null): void {
    if (t.ended !== null) return;
    t.ended = why;
    t.errorCode = errorCode;
    t.wake();
  }

  private async serve(t: Transfer, req: { file: string; options: Map<string, string> }, rinfo: RemoteInfo): Promise<void> {
    const reply = createSocket(this.family);
    t.socket = reply;
    reply.on('error', (e) => this.o.log('tftp socket error', { client: rinfo.address, err: e.message }));
    await new Promise<void>((resolve, reject) => {
      reply.once('error', reject);
      reply.bind(0, this.o.host, () => {
        reply.off('error', reject);
        resolve();
      });
    });
    const send = (b: Buffer) => sendTo(reply, b, rinfo.port, rinfo.address);
    if (t.ended !== null) return;
    const path = this.resolve(req.file);
    let fh: FileHandle | null = null;
    try {
      if (!path || !(await stat(path)).isFile()) throw new Error('not a file');
      fh = await open(path, 'r');
    } catch {
      this.o.log('tftp not found', { file: req.file, client: rinfo.address });
      await send(errorPacket(ERR.NOT_FOUND, `file not found: ${req.file}`));
      return;
    }
    try {
      await this.transfer(t, fh, req.options, reply, send, rinfo);
      this.o.log('tftp sent', { file: req.file, client: rinfo.address });
    } finally {
      await fh.close();
    }
  }

  private async transfer(
    t: Transfer,
    fh: FileHandle,
    options: Map<string, string>,
    reply: Socket,
    send: (b: Buffer) => Promise<void>,
    rinfo: RemoteInfo,
  ): Promise<void> {
    const size = (await fh.stat()).size;
    // Option negotiation: accept what is in range, ignore the rest (RFC 2347 lets us).
    const accepted = new Map<string, string>();
    let blksize = 512;
    let timeoutMs = this.o.timeoutMs;
    const b = Number(options.get('blksize'));
    if (Number.isInteger(b) && b >= 8) {
      blksize = Math.min(b, MAX_BLKSIZE);
      accepted.set('blksize', String(blksize));
    }
    if (options.has('tsize')) accepted.set('tsize', String(size));
    const tm = Number(options.get('timeout'));
    if (Number.isInteger(tm) && tm >= 1 && tm <= 255) {
      timeoutMs = tm * 1000;
      accepted.set('timeout', String(tm));
    }

    let acked = -1;
    reply.on('message', (m, from) => {
      try {
        if (from.port !== rinfo.port || from.address !== rinfo.address) {
          // RFC 1350: a packet from an unknown TID gets an error and does not disturb the transfer.
          void sendTo(reply, errorPacket(ERR.UNKNOWN_TID, 'unknown transfer ID'), from.port, from.address);
          return;
        }
        const d = decodePacket(m);
        if (d.ok && d.packet.op === 'ack') acked = d.packet.block;
        else if (d.ok && d.packet.op === 'error') this.end(t, `client aborted: ${d.packet.message}`, null);
        else {
          // The peer sent something a reading client never sends: RFC 1350 ends the transfer with an ERROR.
          const why = `illegal TFTP operation: ${d.ok ? `unexpected ${d.packet.op.toUpperCase()}` : d.reason}`;
          this.end(t, why, ERR.ILLEGAL);
        }
        t.wake();
      } catch (e) {
        this.o.log('tftp message failed', { client: rinfo.address, err: (e as Error).message });
      }
    });

    /** Sends `packet` until block `block` is acknowledged; throws when the transfer must stop. */
    const waitFor = async (block: number, packet: Buffer): Promise<void> => {
      for (let attempt = 0; attempt <= this.o.retries; attempt++) {
        await send(packet);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          if (t.ended !== null) {
            if (t.errorCode !== null) await send(errorPacket(t.errorCode, t.ended));
            throw new Error(t.ended);
          }
          // Duplicate ACKs of the previous block are ignored, not answered (the Sorcerer's Apprentice bug).
          if (acked === block) return;
          const left = deadline - Date.now();
          if (left <= 0) break;
          await new Promise<void>((r) => {
            const timer = setTimeout(r, left);
            t.wake = () => {
              clearTimeout(timer);
              r();
            };
          });
          t.wake = () => undefined;
        }
      }
      throw new Error(`no ACK for block ${block} after ${this.o.retries + 1} tries`);
    };

    if (accepted.size > 0) {
      const parts: Buffer[] = [Buffer.from([0, OP.OACK])];
      for (const [k, v] of accepted) parts.push(Buffer.from(`${k}\0${v}\0`, 'ascii'));
      await waitFor(0, Buffer.concat(parts));
    }
    const buf = Buffer.alloc(4 + blksize);
    let block = 1;
    let offset = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 4, blksize, offset);
      buf.writeUInt16BE(OP.DATA, 0);
      buf.writeUInt16BE(block & 0xffff, 2);
      await waitFor(block & 0xffff, Buffer.from(buf.subarray(0, 4 + bytesRead)));
      offset += bytesRead;
      if (bytesRead < blksize) return;
      block++;
    }
  }
}
