import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, symlinkSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TftpServer } from '../../src/boot/tftp.js';

const exec = promisify(execFile);
const IPXE_DIR = '/usr/lib/ipxe';

/** The TFTP server against real clients: tftp-hpa's `tftp` and curl's tftp:// support. */
describe('TFTP server', () => {
  let server: TftpServer;
  let port: number;
  const scratch = mkdtempSync(join(tmpdir(), 'plinth-tftp-'));
  beforeAll(async () => {
    server = new TftpServer({ root: IPXE_DIR, host: '127.0.0.1', port: 0 });
    port = (await server.start()).port;
  });
  afterAll(async () => server?.stop());

  it.each(['undionly.kpxe', 'ipxe.efi'])('serves %s from Debian\'s ipxe package byte for byte (tftp-hpa)', async (file) => {
    const out = join(scratch, `hpa-${file}`);
    await exec('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', file, out], { timeout: 60_000 });
    expect(readFileSync(out).equals(readFileSync(join(IPXE_DIR, file)))).toBe(true);
  });

  it('negotiates block size and transfer size (curl)', async () => {
    const out = join(scratch, 'curl-ipxe.efi');
    const r = await exec('curl', ['-sS', '--tftp-blksize', '1428', '-o', out, '-w', '%{size_download}', `tftp://127.0.0.1:${port}/ipxe.efi`], { timeout: 60_000 });
    const expected = readFileSync(join(IPXE_DIR, 'ipxe.efi'));
    expect(Number(r.stdout)).toBe(expected.length);
    expect(readFileSync(out).equals(expected)).toBe(true);
  });

  it('answers errors for missing files, paths outside its root and writes', async () => {
    const missing = await exec('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'nothing.efi', join(scratch, 'n')], { timeout: 30_000 }).catch((e) => e);
    expect(`${missing.stdout}${missing.stderr}`).toMatch(/File not found|file not found/i);
    const escape = await exec('curl', ['-sS', '-o', join(scratch, 'p'), `tftp://127.0.0.1:${port}/../../etc/passwd`], { timeout: 30_000 }).catch((e) => e);
    expect(escape.code).not.toBe(0);
    const src = join(scratch, 'upload.bin');
    writeFileSync(src, 'x');
    const put = await exec('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', src, 'upload.bin'], { timeout: 30_000 }).catch((e) => e);
    expect(`${put.stdout}${put.stderr}`).toMatch(/read-only|Access violation/i);
    expect(existsSync(join(IPXE_DIR, 'upload.bin'))).toBe(false);
  });

  it('refuses a raw read request that climbs out of its root', async () => {
    const { createSocket } = await import('node:dgram');
    const sock = createSocket('udp4');
    const reply = new Promise<Buffer>((r) => sock.on('message', (m) => r(m)));
    sock.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('../../../../etc/passwd\0octet\0', 'ascii')]), port, '127.0.0.1');
    const m = await reply;
    sock.close();
    expect(m.readUInt16BE(0)).toBe(5);
    expect(m.subarray(4).toString('ascii')).toMatch(/^file not found/);
  });

  it('follows links placed in its root (as Debian places ipxe.efi) and sends files that end on a block boundary', async () => {
    const root = mkdtempSync(join(tmpdir(), 'plinth-tftp-root-'));
    symlinkSync('/etc/hostname', join(root, 'linked'));
    const exact = randomBytes(512 * 3);
    writeFileSync(join(root, 'exact.bin'), exact);
    const s = new TftpServer({ root, host: '127.0.0.1', port: 0 });
    const p = (await s.start()).port;
    try {
      await exec('curl', ['-sS', '-o', join(scratch, 'linked'), `tftp://127.0.0.1:${p}/linked`], { timeout: 30_000 });
      expect(readFileSync(join(scratch, 'linked'), 'utf8')).toBe(readFileSync('/etc/hostname', 'utf8'));
      const climb = await exec('curl', ['-sS', '-o', join(scratch, 'climb'), `tftp://127.0.0.1:${p}/..%2F..%2Fetc%2Fpasswd`], { timeout: 30_000 }).catch((e) => e);
      expect(climb.code).not.toBe(0);
      const out = join(scratch, 'exact.bin');
      await exec('tftp', ['-m', 'binary', '127.0.0.1', String(p), '-c', 'get', 'exact.bin', out], { timeout: 30_000 });
      expect(readFileSync(out).equals(exact)).toBe(true);
    } finally {
      await s.stop();
    }
  });
});
