import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, ensureBuilt, startServe, type ServeProcess } from '../support/plinth-process.js';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { readDataDirId } from '../../src/config/data-dir.js';
import { DROP_BLOCK_DEVICE_MOUNTS } from '../support/mount-namespace.js';

const run = promisify(execFile);

/**
 * A controller whose data directory this host cannot see, and the CLI pointed at it from
 * another directory (PLINTH_URL / PLINTH_TOKEN). The controller runs in a mount namespace of
 * its own with a tmpfs over its data directory: the path exists here too, but holds other
 * files, exactly like a controller on another host with the same path.
 */
describe('CLI builds away from the controller', () => {
  let serve: ServeProcess;
  let ctrlDir: string;
  let cliDir: string;
  let env: NodeJS.ProcessEnv;
  let adminToken: string;

  const plinth = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [BIN, ...args], { cwd: cliDir, env: { ...env, ...extra } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  beforeAll(async () => {
    ensureBuilt();
    ctrlDir = mkdtempSync(join(tmpdir(), 'plinth-ctrl-'));
    cliDir = mkdtempSync(join(tmpdir(), 'plinth-cli-'));
    const hide = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${DROP_BLOCK_DEVICE_MOUNTS} && mount -t tmpfs plinth-data "$0" && exec "$@"`, ctrlDir];
    serve = await startServe({ PLINTH_DATA_DIR: ctrlDir, PLINTH_LISTEN: '127.0.0.1:0', PLINTH_LOG_LEVEL: 'info' }, [], { prefix: hide });
    // The admin token is in the controller's view of its directory: its process's root.
    adminToken = readFileSync(`/proc/${serve.child.pid}/root${ctrlDir}/admin.token`, 'utf8').trim();
    env = { PATH: process.env.PATH!, HOME: process.env.HOME!, PLINTH_URL: serve.url, PLINTH_TOKEN: adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' };
  }, 240_000);
  afterAll(async () => {
    await serve?.stop();
    rmSync(cliDir, { recursive: true, force: true });
    rmSync(ctrlDir, { recursive: true, force: true });
  });

  const get = (path: string, token: string | null = adminToken) => fetch(`${serve.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('reports its id, version, database and data directory', async () => {
    const r = await get('/api/v1/controller');
    expect(r.status).toBe(200);
    const body = (await r.json()) as { id: string; version: string; database: string; dataDir: { path: string; id: string } };
    expect(body).toMatchObject({ version: '0.1.0', database: 'sqlite', dataDir: { path: ctrlDir } });
    expect(body.dataDir.id).toBe(readFileSync(`/proc/${serve.child.pid}/root${ctrlDir}/data-dir.id`, 'utf8').trim());
    // Not the directory this host sees at that path.
    expect(readDataDirId(ctrlDir)).toBeNull();
    expect((await get('/api/v1/controller', null)).status).toBe(401);
  });

  it('installer upload: the controller serves what was built here, at once', async () => {
    const built = join(cliDir, 'var', 'boot', 'installer');
    mkdirSync(built, { recursive: true });
    const kernel = Buffer.from('MZ kernel bytes '.repeat(4096));
    const initrd = Buffer.alloc(3 * 2 ** 20, 7);
    writeFileSync(join(built, 'vmlinuz'), kernel);
    writeFileSync(join(built, 'initrd.img'), initrd);
    writeFileSync(join(built, 'manifest.json'), JSON.stringify({ format: 1 }));
    expect((await get('/boot/installer/vmlinuz', null)).status).toBe(404);

    const r = await plinth(['installer', 'upload']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`uploaded to ${serve.url}; machines boot it now`);
    // Not a terminal: the progress is one line per tenth on stderr.
    expect(r.stderr).toMatch(/^upload {3}initrd\.img 100%/m);
    const served = await get('/boot/installer/initrd.img', null);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(initrd)).toBe(true);
    expect(Buffer.from(await (await get('/boot/installer/vmlinuz', null)).arrayBuffer()).equals(kernel)).toBe(true);
  });

  it('refuses uploads that are not whole, too large, damaged or from a non-admin', async () => {
    const put = (file: string, body: Buffer, q = '', token = adminToken) =>
      fetch(`${serve.url}/api/v1/installer/${file}${q}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });
    const before = Buffer.from(await (await get('/boot/installer/vmlinuz', null)).arrayBuffer());
    const bad = await put('vmlinuz', Buffer.from('other'), `?sha256=${'0'.repeat(64)}`);
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^sha256: the upload's checksum is/);
    const big = await put('manifest.json', Buffer.alloc(2 ** 20 + 1, 32));
    expect(big.status).toBe(413);
    expect((await put('vmlinuz', Buffer.alloc(0))).status).toBe(400);
    expect((await put('..%2Fadmin.token', Buffer.from('x'))).status).toBe(400);
    expect((await put('initrd', Buffer.from('x'))).status).toBe(400);
    const reader = ((await (await fetch(`${serve.url}/api/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'viewer', role: 'reader' }) })).json()) as { token: string }).token;
    expect((await put('vmlinuz', Buffer.from('x'), '', reader)).status).toBe(403);
    // Nothing of it replaced what machines get.
    expect(Buffer.from(await (await get('/boot/installer/vmlinuz', null)).arrayBuffer()).equals(before)).toBe(true);
  });

  it('image build refuses before doing any work, saying why and what to do', async () => {
    const r = await plinth(['image', 'build', 'debian-12']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`the controller at ${serve.url} keeps its images in ${ctrlDir} on its own host, which this host does not see`);
    expect(r.stderr).toContain('plinth image upload FILE --name debian-12');
    expect(existsSync(join(cliDir, 'var', 'images'))).toBe(false);
  });

  it('installer build refuses before building when the token could not upload, or with --iso', async () => {
    const reader = ((await (await fetch(`${serve.url}/api/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'looker', role: 'reader' }) })).json()) as { token: string }).token;
    const r = await plinth(['installer', 'build', '--data-dir', join(cliDir, 'elsewhere')], { PLINTH_TOKEN: reader });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("installer build: uploading to");
    expect(r.stderr).toContain("needs an admin token; 'looker' is reader");
    expect(existsSync(join(cliDir, 'elsewhere'))).toBe(false);
    const iso = await plinth(['installer', 'build', '--iso', '--data-dir', join(cliDir, 'elsewhere')]);
    expect(iso.code).toBe(2);
    expect(iso.stderr).toContain('builds its installer ISO itself on the first request for /boot/installer.iso');
    expect(existsSync(join(cliDir, 'elsewhere'))).toBe(false);
  });

  it('a named controller that does not answer fails the build at once', async () => {
    const r = await plinth(['image', 'build'], { PLINTH_URL: 'http://127.0.0.1:9' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the controller at http://127.0.0.1:9');
    expect(existsSync(join(cliDir, 'var', 'images'))).toBe(false);
  });
});

describe('CLI beside the controller', () => {
  it('finds the same data directory id at the path the controller reports', async () => {
    const t = await freshController(sqliteBackend);
    try {
      const info = (await t.api('GET', '/api/v1/controller')).json();
      expect(info.dataDir.path).toBe(t.config.dataDir);
      expect(readDataDirId(info.dataDir.path)).toBe(info.dataDir.id);
    } finally {
      await t.close();
    }
  });
});
