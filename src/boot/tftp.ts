import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';

/**
 * A read-only TFTP server (RFC 1350) with option negotiation for block size, transfer size
 * and timeout (RFC 2347, 2348, 2349). It exists so that PXE ROMs that only speak TFTP can
 * chain-load iPXE (undionly.kpxe, ipxe.efi), which then speaks HTTP to the boot service.
 * Every transfer gets its own socket (its TID); blocks are resent on timeout.
 */
export interface TftpServerOptions {
  root: string;
  host: string;
  port: number;
  /** Per-block timeout when the client does not negotiate one. */
  timeoutMs?: number;
  retries?: number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;
const ERR = { NOT_FOUND: 1, ACCESS: 2, ILLEGAL: 4, OPTION: 8 } as const;

function errorPacket(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'ascii');
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt16BE(OP.ERROR, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  return b;
}

/** Parses an RRQ/WRQ: filename, mode, then option/value pairs, all NUL-terminated. */
export function parseRequest(msg: Buffer): { op: number; file: string; mode: string; options: Map<string, string> } | null {
  if (msg.length < 4) return null;
  const op = msg.readUInt16BE(0);
  const parts = msg.subarray(2).toString('ascii').split('\0');
  if (parts.length < 3) return null;
  const [file, mode, ...rest] = parts;
  const options = new Map<string, string>();
  for (let i = 0; i + 1 < rest.length; i += 2) if (rest[i]) options.set(rest[i]!.toLowerCase(), rest[i + 1]!);
  return { op, file: file!, mode: mode!.toLowerCase(), options };
}

export class TftpServer {
  private socket: Socket | null = null;
  private readonly transfers = new Set<Socket>();
  private readonly o: Required<Omit<TftpServerOptions, 'log'>> & { log: NonNullable<TftpServerOptions['log']> };
  private rootReal = '';

  constructor(options: TftpServerOptions) {
    this.o = { timeoutMs: 1000, retries: 5, log: () => undefined, ...options };
  }

  async start(): Promise<{ host: string; port: number }> {
    this.rootReal = await realpath(this.o.root);
    const socket = createSocket(this.o.host.includes(':') ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => void this.onRequest(msg, rinfo));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.o.port, this.o.host, () => resolve());
    });
    this.socket = socket;
    const a = socket.address();
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    for (const t of this.transfers) t.close();
    this.transfers.clear();
    await new Promise<void>((r) => (this.socket ? this.socket.close(() => r()) : r()));
    this.socket = null;
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

  private async onRequest(msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    const req = parseRequest(msg);
    const reply = createSocket(rinfo.family === 'IPv6' ? 'udp6' : 'udp4');
    this.transfers.add(reply);
    const send = (b: Buffer) => new Promise<void>((r) => reply.send(b, rinfo.port, rinfo.address, () => r()));
    const done = () => {
      this.transfers.delete(reply);
      try {
        reply.close();
      } catch {
        // already closed by stop()
      }
    };
    await new Promise<void>((r) => reply.bind(0, this.o.host.includes(':') ? '::' : '0.0.0.0', () => r()));
    if (!req || (req.op !== OP.RRQ && req.op !== OP.WRQ)) {
      await send(errorPacket(ERR.ILLEGAL, 'illegal TFTP operation'));
      return done();
    }
    if (req.op === OP.WRQ) {
      await send(errorPacket(ERR.ACCESS, 'this server is read-only'));
      return done();
    }
    const path = this.resolve(req.file);
    let fh: FileHandle | null = null;
    try {
      if (!path || !(await stat(path)).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      fh = await open(path, 'r');
    } catch {
      this.o.log('tftp not found', { file: req.file, client: rinfo.address });
      await send(errorPacket(ERR.NOT_FOUND, `file not found: ${req.file}`));
      return done();
    }
    try {
      await this.transfer(fh, req.options, reply, send, rinfo);
      this.o.log('tftp sent', { file: req.file, client: rinfo.address });
    } catch (e) {
      this.o.log('tftp transfer failed', { file: req.file, client: rinfo.address, err: (e as Error).message });
    } finally {
      await fh.close();
      done();
    }
  }

  private async transfer(
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
      blksize = Math.min(b, 65464);
      accepted.set('blksize', String(blksize));
    }
    if (options.has('tsize')) accepted.set('tsize', String(size));
    const t = Number(options.get('timeout'));
    if (Number.isInteger(t) && t >= 1 && t <= 255) {
      timeoutMs = t * 1000;
      accepted.set('timeout', String(t));
    }

    const acks: number[] = [];
    let wake: (() => void) | null = null;
    let clientError: string | null = null;
    reply.on('message', (m, from) => {
      if (from.port !== rinfo.port || from.address !== rinfo.address) {
        // RFC 1350: a packet from an unknown TID gets an error and does not disturb the transfer.
        reply.send(errorPacket(5, 'unknown transfer ID'), from.port, from.address);
        return;
      }
      const op = m.readUInt16BE(0);
      if (op === OP.ACK) acks.push(m.readUInt16BE(2));
      else if (op === OP.ERROR) clientError = m.subarray(4).toString('ascii').replace(/\0.*$/, '');
      wake?.();
    });
    const waitFor = async (block: number, packet: Buffer): Promise<void> => {
      for (let attempt = 0; attempt <= this.o.retries; attempt++) {
        await send(packet);
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          if (clientError !== null) throw new Error(`client aborted: ${clientError}`);
          const i = acks.indexOf(block);
          if (i >= 0) {
            acks.splice(0, i + 1);
            return;
          }
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, Math.max(1, deadline - Date.now()));
          });
          wake = null;
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
