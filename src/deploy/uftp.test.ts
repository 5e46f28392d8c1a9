import { describe, expect, it } from 'vitest';
import { parseUftpLine, uftpExitMeaning, uftpId, uftpSenderArgs } from './uftp.js';

describe('uftp sender', () => {
  const settings = {
    file: '/var/lib/plinth/images/tiny.raw',
    rateBitsPerSecond: 200_000_000,
    ttl: 3,
    port: 9440,
    dataAddress: '232.5.5.1',
    sourceAddress: '10.0.0.1',
    serverId: '0x1234ABCD',
    keyFile: '/tmp/k/server-key.pem',
    clients: ['0x00000001', '0x00000002'],
  };

  it('sends the image encrypted (AES-256-GCM, ECDH signed by the session key) to a closed group, at the rate cap and TTL', () => {
    const args = uftpSenderArgs(settings);
    const flag = (f: string) => args[args.indexOf(f) + 1];
    expect(flag('-R')).toBe('200000');
    expect(flag('-t')).toBe('3');
    expect(flag('-Y')).toBe('aes256-gcm');
    expect(flag('-e')).toBe('ecdh_ecdsa');
    expect(flag('-k')).toBe('/tmp/k/server-key.pem');
    expect(flag('-H')).toBe('0x00000001,0x00000002');
    expect(flag('-I')).toBe('10.0.0.1');
    expect(flag('-U')).toBe('0x1234ABCD');
    expect(flag('-p')).toBe('9440');
    // Source-specific multicast addresses: receivers that pin their server need them.
    expect([flag('-M'), flag('-P')]).toEqual(['232.4.4.1', '232.5.5.1']);
    expect(flag('-D')).toBe('image');
    expect(args.at(-1)).toBe(settings.file);
  });

  it('writes IDs as uftp does', () => {
    expect(uftpId(1)).toBe('0x00000001');
    expect(uftpId(0xdeadbeef)).toBe('0xDEADBEEF');
  });

  it("reads what its log says: registrations, the start, the file's blocks, NAKs and results", () => {
    expect(parseUftpLine('CONNECT;success;0x00000001')).toEqual({ kind: 'registered' });
    expect(parseUftpLine('CONNECT;failed;0x00000002')).toBeNull();
    expect(parseUftpLine('2026/12/03 20:14:45.625019: [9FCD10B2/00:0001]: Sending file')).toEqual({ kind: 'sending' });
    expect(parseUftpLine('2026/12/03 20:14:45.623791: [9FCD10B2/00:0001]: Bytes: 8388608  Blocks: 6453  Sections: 1')).toEqual({ kind: 'file', blocks: 6453 });
    expect(parseUftpLine('2026/12/03 20:14:46.0: [9FCD10B2/00:0001]: Got 12 NAKs for section 0 from 0x00000001 ')).toEqual({ kind: 'naks', count: 12 });
    expect(parseUftpLine('RESULT;0x00000001;image;8192KB;copy;11739.06KB/s')).toEqual({ kind: 'received' });
    expect(parseUftpLine('RESULT;0x00000002;image;8192KB;mute;')).toBeNull();
    expect(uftpExitMeaning(7)).toBe('no receiver answered its announce');
    expect(uftpExitMeaning(42)).toBe('exit status 42');
  });
});
