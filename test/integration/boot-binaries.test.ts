import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';

type TC = Awaited<ReturnType<typeof freshController>>;

describe.each(backends)('iPXE binaries over HTTP on $name', (backend) => {
  let t: TC;
  const root = mkdtempSync(join(tmpdir(), 'plinth-ipxe-'));
  const efi = randomBytes(200_000);
  const kpxe = randomBytes(70_000);
  writeFileSync(join(root, 'ipxe.efi'), efi);
  writeFileSync(join(root, 'undionly.kpxe'), kpxe);
  beforeAll(async () => {
    t = await freshController(backend, { tftp: { root } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves ipxe.efi and undionly.kpxe from tftp.root, without a token', async () => {
    const r = await t.inject('GET', '/boot/ipxe.efi');
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(efi)).toBe(true);
    const k = await t.inject('GET', '/boot/undionly.kpxe');
    expect(k.rawPayload.equals(kpxe)).toBe(true);
    expect((await t.inject('GET', '/boot/snponly.efi')).statusCode).toBe(404);
    expect((await t.inject('GET', '/boot/..%2Fetc%2Fpasswd')).statusCode).toBe(400);
  });

  it('a UEFI HTTP Boot client asking for /boot.ipxe gets ipxe.efi, not a file of comments', async () => {
    const r = await t.inject('GET', '/boot.ipxe', { headers: { 'user-agent': 'UefiHttpBoot/1.0' } });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(efi)).toBe(true);
    // iPXE itself still gets the script, other clients the comments.
    expect((await t.inject('GET', '/boot.ipxe', { headers: { 'user-agent': 'iPXE/1.21.1' } })).body).toMatch(/^#!ipxe/);
    expect((await t.inject('GET', '/boot.ipxe', { headers: { 'user-agent': 'Wget' } })).body).toMatch(/^# Plinth/);
  });
});

describe('plinth serve --dhcp', () => {
  const cli = inProcessCli({});
  it('names the missing or bad setting in one line and exits non-zero', async () => {
    const full = await cli('serve', '--dhcp', 'full', '--dhcp-interface', 'br0');
    expect(full.code).not.toBe(0);
    expect(full.stderr.trim().split('\n')).toHaveLength(1);
    expect(full.stderr).toMatch(/dhcp\.range/);
    const mode = await cli('serve', '--dhcp', 'sometimes', '--dhcp-interface', 'br0');
    expect(mode.code).not.toBe(0);
    expect(mode.stderr).toMatch(/dhcp\.mode/);
    const dataDir = mkdtempSync(join(tmpdir(), 'plinth-serve-'));
    try {
      const proxy = await cli('serve', '--dhcp', 'proxy', '--dhcp-interface', 'plinth-none0', '--data-dir', dataDir, '--listen', '127.0.0.1:0');
      expect(proxy.code).not.toBe(0);
      expect(proxy.stderr).toMatch(/dhcp\.interface: 'plinth-none0' has no IPv4 address/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
