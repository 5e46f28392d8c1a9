import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodePacket } from './tftp.js';

describe('decodePacket', () => {
  it('answers for any bytes and never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 700 }), fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 40 })).map(([op, r]) => Uint8Array.from([0, op, ...r]))), (bytes) => {
        const d = decodePacket(Buffer.from(bytes));
        expect(typeof d.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes requests, ACKs and ERRORs and refuses what is malformed', () => {
    const rrq = decodePacket(Buffer.from('\0\x01ipxe.efi\0octet\0blksize\x001428\0TSIZE\x000\0', 'latin1'));
    expect(rrq).toEqual({ ok: true, packet: { op: 'rrq', file: 'ipxe.efi', mode: 'octet', options: new Map([['blksize', '1428'], ['tsize', '0']]) } });
    expect(decodePacket(Buffer.from([0, 4, 0, 7]))).toEqual({ ok: true, packet: { op: 'ack', block: 7 } });
    expect(decodePacket(Buffer.from([4]))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.from([0, 4, 0]))).toMatchObject({ ok: false, reason: 'ACK is not 4 bytes' });
    expect(decodePacket(Buffer.from('\0\x01ipxe.efi\0octet', 'latin1'))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.from('\0\x01ipxe\n.efi\0octet\0', 'latin1'))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.from('\0\x01ipxe.efi\0mail\0', 'latin1'))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.from('\0\x01ipxe.efi\0octet\0blksize\0', 'latin1'))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(600, 0x41), Buffer.from('\0octet\0')]))).toMatchObject({ ok: false });
    expect(decodePacket(Buffer.from([0, 9, 1, 2]))).toMatchObject({ ok: false, reason: 'unknown opcode 9' });
    expect(decodePacket(Buffer.from('\0\x05\0\x01no\x1b[2Jway\0', 'latin1'))).toEqual({ ok: true, packet: { op: 'error', code: 1, message: 'no?[2Jway' } });
  });
});
