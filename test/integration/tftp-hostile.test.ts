import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import type { Socket } from 'node:dgram';
import { nextMessage, readRequest, startTftpProcess, udpClient, type TftpProcess } from '../support/tftp-process.js';

const exec = promisify(execFile);

/**
 * The TFTP server as an attacker on the provisioning network sees it: any datagram, to the
 * listen port or to a transfer's port, from the transfer's peer or a stranger. The server
 * runs in its own process, so that "it threw out of a handler" shows as "the process died".
 */
const root = mkdtempSync(join(tmpdir(), 'plinth-tftp-hostile-'));
const big = randomBytes(512 * 40 + 17);
writeFileSync(join(root, 'big.bin'), big);
const scratch = mkdtempSync(join(tmpdir(), 'plinth-tftp-hostile-out-'));

const send = (s: Socket, b: Uint8Array, port: number, host = '127.0.0.1') => new Promise<void>((r) => s.send(b, port, host, () => r()));
const opcode = (m: Buffer) => m.readUInt16BE(0);
const errorPacket = (code: number, text: string) => Buffer.concat([Buffer.from([0, 5, 0, code]), Buffer.from(`${text}\0`, 'ascii')]);

/** Starts a transfer of big.bin from a fresh client and returns the client and the transfer's port. */
async function openTransfer(p: TftpProcess, options: Record<string, string> = {}): Promise<{ client: Socket; port: number; first: Buffer }> {
  const client = await udpClient();
  const reply = nextMessage(client);
  await send(client, readRequest('big.bin', options), p.port);
  const { msg, port } = await p.unlessDead(reply);
  return { client, port, first: msg };
}

/** A whole download with curl, compared byte for byte: the server still does its job. */
async function downloadWorks(p: TftpProcess): Promise<void> {
  const out = join(scratch, `big-${randomBytes(4).toString('hex')}`);
  await exec('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${p.port}/big.bin`], { timeout: 60_000 });
  expect(readFileSync(out).equals(big)).toBe(true);
}

describe('TFTP server under hostile datagrams', () => {
  let p: TftpProcess;
  beforeAll(async () => {
    p = await startTftpProcess({ root, timeoutMs: 300 });
  });
  afterAll(async () => p?.stop());

  it('survives a 1-byte datagram and a 3-byte ACK sent to a transfer port by its own peer, and ends that transfer with an ERROR', async () => {
    const { client, port, first } = await openTransfer(p);
    try {
      expect(opcode(first)).toBe(3);
      const answer = nextMessage(client);
      await send(client, Buffer.from([4]), port);
      // The peer sent garbage: RFC 1350 answers with an ERROR (illegal operation) and ends the transfer.
      let m = await p.unlessDead(answer);
      while (opcode(m.msg) === 3) m = await p.unlessDead(nextMessage(client)); // a DATA resent before the garbage arrived
      expect(m.port).toBe(port);
      expect(opcode(m.msg)).toBe(5);
      expect(m.msg.readUInt16BE(2)).toBe(4);
      const second = await openTransfer(p);
      await send(second.client, Buffer.from([0, 4, 0]), second.port);
      second.client.close();
    } finally {
      client.close();
    }
    await downloadWorks(p);
    expect(p.exited()).toBe(false);
  });

  it('survives any datagram to the listen port and to a transfer port, from the peer or a stranger (property)', async () => {
    const datagram = fc.oneof(
      fc.uint8Array({ maxLength: 8 }),
      fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 600 })).map(([op, rest]) => Uint8Array.from([0, op, ...rest])),
      fc.tuple(fc.constantFrom(1, 2, 6), fc.array(fc.constantFrom('big.bin', 'octet', 'netascii', 'blksize', '8', '65464', 'tsize', 'timeout', '0', '255', '../x', ''), { maxLength: 8 }))
        .map(([op, words]) => Uint8Array.from([0, op, ...Buffer.from(words.map((w) => `${w}\0`).join(''), 'ascii')])),
      fc.constant(new Uint8Array(65_000).fill(0x41)),
    );
    const shot = fc.record({ to: fc.constantFrom('listen', 'transfer'), from: fc.constantFrom('peer', 'stranger'), bytes: datagram });
    const stranger = await udpClient();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(shot, { minLength: 1, maxLength: 12 }), async (shots) => {
          const { client, port } = await openTransfer(p);
          try {
            for (const s of shots) await send(s.from === 'peer' ? client : stranger, s.bytes, s.to === 'listen' ? p.port : port);
            // Ends the transfer if the garbage did not: abandoned transfers must not fill the server.
            await send(client, errorPacket(0, 'test done'), port);
          } finally {
            client.close();
          }
          return !p.exited();
        }),
        { numRuns: 60 },
      );
    } finally {
      stranger.close();
    }
    await downloadWorks(p);
    expect(p.exited()).toBe(false);
  });
});

describe('TFTP server limits', () => {
  it('answers an ERROR beyond tftp.maxTransfers, and serves again once a transfer ends', async () => {
    const p = await startTftpProcess({ root, maxTransfers: 2, timeoutMs: 60_000 });
    try {
      const a = await openTransfer(p);
      const b = await openTransfer(p);
      expect(opcode(a.first)).toBe(3);
      expect(opcode(b.first)).toBe(3);
      const c = await openTransfer(p);
      c.client.close();
      expect(opcode(c.first)).toBe(5);
      expect(c.first.subarray(4).toString('ascii')).toMatch(/too many transfers/);
      await send(a.client, errorPacket(0, 'bye'), a.port);
      a.client.close();
      // The slot comes back when the server has processed the abort: ask until it does.
      for (;;) {
        const d = await openTransfer(p);
        d.client.close();
        if (opcode(d.first) === 3) break;
      }
      b.client.close();
    } finally {
      await p.stop();
    }
  });

  it('ends a transfer after tftp.transferTimeout even when the client negotiated long block timeouts', async () => {
    const p = await startTftpProcess({ root, maxTransfers: 1, transferTimeoutMs: 1000 });
    try {
      // timeout=255 and no ACK ever: without a lifetime this transfer would hold its slot for 25 minutes.
      const a = await openTransfer(p, { timeout: '255', tsize: '0' });
      expect(opcode(a.first)).toBe(6);
      const end = await p.unlessDead(nextMessage(a.client));
      a.client.close();
      expect(opcode(end.msg)).toBe(5);
      expect(end.msg.subarray(4).toString('ascii')).toMatch(/timed out/);
      await downloadWorks(p);
    } finally {
      await p.stop();
    }
  });

  it('sends from the configured address, not from whatever address the kernel picks for 0.0.0.0', async () => {
    const p = await startTftpProcess({ root, host: '127.0.0.2' });
    try {
      const client = await udpClient();
      const reply = nextMessage(client);
      await send(client, readRequest('big.bin'), p.port, '127.0.0.2');
      const m = await p.unlessDead(reply);
      await send(client, errorPacket(0, 'bye'), m.port, '127.0.0.2');
      client.close();
      expect(opcode(m.msg)).toBe(3);
      expect(m.address).toBe('127.0.0.2');
    } finally {
      await p.stop();
    }
  });
});
