import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/logger.js';
import { buildAgentLayer } from '../../src/installer/agent-layer.js';
import { CA_BUNDLE_PATH } from '../../src/installer/init-script.js';
import { readCaBundle } from '../../src/config/tls.js';
import { Manager } from '../../src/manager/manager.js';
import { createController, defaultRegistry } from '../../src/controller.js';

/**
 * Real TLS: a private CA and a server certificate for 127.0.0.1 made with the openssl CLI
 * for this run, a controller serving HTTPS with them, and clients that do or do not trust
 * that CA.
 */
const dir = mkdtempSync(join(tmpdir(), 'plinth-tls-'));
const pki = {
  ca: join(dir, 'ca.pem'),
  cert: join(dir, 'server.pem'),
  key: join(dir, 'server.key'),
  notPem: join(dir, 'not-a-cert.pem'),
};

function makePki(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Plinth test CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  writeFileSync(pki.notPem, 'this is not a certificate\n');
}

/** A plain-HTTP request (no fetch pooling), so the boot listener answers exactly what was sent. */
function plainGet(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(() => makePki());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BOOT_PUBLIC = 'http://boot.plinth.test:8080';
const AGENT_PUBLIC = 'https://plinth.test:7443';

describe.each(backends)('HTTPS controller with a plain-HTTP boot listener on $name', (backend) => {
  let t: Awaited<ReturnType<typeof freshController>>;
  let url: string;
  let bootUrl: string;
  let files: string;
  beforeAll(async () => {
    files = mkdtempSync(join(tmpdir(), 'plinth-tls-installer-'));
    writeFileSync(join(files, 'vmlinuz'), 'kernel');
    writeFileSync(join(files, 'initrd.img'), 'initrd');
    t = await freshController(
      backend,
      { publicUrl: AGENT_PUBLIC, tls: { cert: pki.cert, key: pki.key, bootHttpListen: '127.0.0.1:0', bootPublicUrl: BOOT_PUBLIC } },
      { installer: () => ({ kernel: join(files, 'vmlinuz'), initrd: join(files, 'initrd.img') }) },
    );
    url = await t.controller.listen();
    bootUrl = t.controller.bootUrl!;
  });
  afterAll(async () => {
    await t?.close();
    rmSync(files, { recursive: true, force: true });
  });

  const cli = (env: Record<string, string>) =>
    inProcessCli({ PLINTH_URL: url, PLINTH_DATA_DIR: t.config.dataDir, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml', ...env });

  it('serves the API over HTTPS only', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // Plain HTTP to the TLS port gets no API answer.
    await expect(plainGet(url.replace('https:', 'http:'), '/healthz')).rejects.toThrow();
  });

  it('the CLI refuses an untrusted certificate and says how to trust it', async () => {
    const r = await cli({})('machine', 'list', '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not trusted/);
    expect(r.stderr).toMatch(/--ca-bundle or PLINTH_CA_BUNDLE/);
  });

  it('the CLI works with --ca-bundle and with PLINTH_CA_BUNDLE', async () => {
    const created = await cli({})('--ca-bundle', pki.ca, 'machine', 'create', `tls-${backend.name}`, '--mac', '52:54:00:7e:00:01', '--json');
    expect(created.code, created.stderr).toBe(0);
    const listed = await cli({ PLINTH_CA_BUNDLE: pki.ca })('machine', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((m: { name: string }) => m.name)).toContain(`tls-${backend.name}`);
  });

  it('a CA bundle that is not one is a usage error naming where it came from', async () => {
    const flag = await cli({})('--ca-bundle', pki.notPem, 'machine', 'list');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--ca-bundle: .*no PEM certificate/);
    const env = await cli({ PLINTH_CA_BUNDLE: join(dir, 'missing.pem') })('machine', 'list');
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/PLINTH_CA_BUNDLE: cannot read/);
  });

  it('a remote manager reaches the HTTPS controller with the CA bundle, and not without it', async () => {
    const warnings: string[] = [];
    const log = { info: () => undefined, debug: () => undefined, warn: (f: { err?: string }) => void warnings.push(String(f.err)), child: () => log };
    const manager = (site: string, ca: string | null) =>
      new Manager({ url, token: t.adminToken, site, parallel: 1, registry: defaultRegistry(), log: log as never, version: 'test', providerTimeoutMs: 1000, ca });
    const seen = async () => (await t.api('GET', '/api/v1/managers')).json().items.map((m: { site: string }) => m.site);

    const trusted = manager(`tls-site-${backend.name}`, readCaBundle(pki.ca));
    const running = trusted.run();
    while (!(await seen()).includes(`tls-site-${backend.name}`)) await new Promise((r) => setTimeout(r, 50));
    trusted.stop();
    await running;

    const untrusted = manager(`untrusted-site-${backend.name}`, null);
    const failing = untrusted.run();
    while (warnings.length === 0) await new Promise((r) => setTimeout(r, 50));
    untrusted.stop();
    await failing;
    expect(warnings[0]).toMatch(/not trusted/);
    expect(await seen()).not.toContain(`untrusted-site-${backend.name}`);
  });

  it('the manager and the installer build refuse a CA bundle that is not one', async () => {
    const manager = await cli({ PLINTH_TOKEN: 'x' })('manager', '--controller', url, '--site', 's1', '--ca-bundle', pki.notPem);
    expect(manager.code).toBe(2);
    expect(manager.stderr).toMatch(/--ca-bundle: .*no PEM certificate/);
    const managerEnv = await cli({ PLINTH_TOKEN: 'x', PLINTH_CA_BUNDLE: pki.notPem })('manager', '--controller', url, '--site', 's1');
    expect(managerEnv.code).toBe(2);
    expect(managerEnv.stderr).toMatch(/PLINTH_CA_BUNDLE: .*no PEM certificate/);
    const build = await cli({})('installer', 'build', '--data-dir', join(dir, 'never-built'), '--ca-bundle', pki.notPem);
    expect(build.code).toBe(2);
    expect(build.stderr).toMatch(/--ca-bundle: .*no PEM certificate/);
  });

  it('the boot listener hands iPXE scripts whose URLs are the boot URL, and the agent the HTTPS URL', async () => {
    const chain = await plainGet(bootUrl, '/boot.ipxe', { 'user-agent': 'iPXE/1.21.1' });
    expect(chain.status).toBe(200);
    expect(chain.body).toContain(`set plinth-base ${BOOT_PUBLIC}`);

    const script = await plainGet(bootUrl, `/boot/machine.ipxe?mac=52:54:00:7e:00:99&uuid=7e7e7e7e-0000-4000-8000-00000000${backend.name === 'sqlite' ? '0001' : '0002'}`, {
      'user-agent': 'iPXE/1.21.1',
    });
    expect(script.status).toBe(200);
    expect(script.body).toContain(`kernel ${BOOT_PUBLIC}/boot/installer/vmlinuz`);
    expect(script.body).toContain(`plinth.url=${AGENT_PUBLIC} `);
    expect(script.body).not.toContain(`plinth.url=${BOOT_PUBLIC}`);

    const kernel = await plainGet(bootUrl, '/boot/installer/vmlinuz');
    expect(kernel).toEqual({ status: 200, body: 'kernel' });
  });

  it('the boot listener serves nothing but the public boot endpoints', async () => {
    const auth = { authorization: `Bearer ${t.adminToken}` };
    for (const [method, path] of [
      ['GET', '/api/v1/machines'],
      ['GET', '/api/v1/whoami'],
      ['GET', '/healthz'],
      ['GET', '/api/v1/openapi.json'],
      ['POST', '/agent/v1/facts'],
      ['POST', '/agent/v1/hello'],
      ['GET', '/boot/../api/v1/machines'],
      ['GET', '/boot/%2e%2e/api/v1/machines'],
      ['POST', '/boot.ipxe'],
    ] as const) {
      const r = await plainGet(bootUrl, path, auth, method);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body, `${method} ${path}`).toContain('boot listener');
    }
  });
});

describe('TLS settings are checked at start', () => {
  const start = async (tls: Record<string, string>, extra: Record<string, unknown> = {}) => {
    const db = await sqliteBackend.create();
    try {
      const config = loadConfig({ flags: { dataDir: db.dataDir, listen: '127.0.0.1:0', logLevel: 'silent', tls, ...extra } });
      const c = await createController(config, { logger: createLogger('silent'), noBackground: true });
      await c.close();
    } finally {
      await db.drop();
    }
  };

  it.each([
    [{ cert: 'CERT' }, {}, /tls\.key is required/],
    [{ key: 'KEY' }, {}, /tls\.cert is required/],
    [{ cert: 'MISSING', key: 'KEY' }, {}, /tls\.cert: cannot read/],
    [{ cert: 'NOTPEM', key: 'KEY' }, {}, /tls\.cert: .* holds no PEM certificate/],
    [{ cert: 'CERT', key: 'CERT' }, {}, /tls\.key: .* holds no PEM private key/],
    [{ bootHttpListen: '127.0.0.1:0' }, { publicUrl: 'https://x' }, /needs tls\.bootPublicUrl/],
    [{ bootHttpListen: '127.0.0.1:0', bootPublicUrl: 'http://x' }, {}, /needs publicUrl/],
    [{ bootHttpListen: '127.0.0.1:0', bootPublicUrl: 'https://x' }, { publicUrl: 'https://y' }, /tls\.bootPublicUrl: .* must start with http:\/\//],
    [{ bootPublicUrl: 'http://x' }, {}, /tls\.bootHttpListen is not/],
  ])('%j %j is refused', async (tls, extra, message) => {
    const path = (v: string) => ({ CERT: pki.cert, KEY: pki.key, NOTPEM: pki.notPem, MISSING: join(dir, 'missing.pem') })[v] ?? v;
    const resolved = Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, k === 'cert' || k === 'key' ? path(v) : v]));
    await expect(start(resolved, extra)).rejects.toThrow(message);
  });
});

describe('the installer agent trusts the CA bundle built into it', () => {
  let t: Awaited<ReturnType<typeof freshController>>;
  let url: string;
  beforeAll(async () => {
    t = await freshController(sqliteBackend, { tls: { cert: pki.cert, key: pki.key } });
    url = await t.controller.listen();
  });
  afterAll(async () => t?.close());

  /** Node's fetch in a fresh process, the way the installer's /init starts the agent. */
  const nodeFetch = (env: Record<string, string>) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      const script = `fetch(${JSON.stringify(`${url}/healthz`)}).then(r => r.text()).then(t => { console.log(t); }, e => { console.log(String(e.cause?.code ?? e)); process.exit(1); })`;
      execFile(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout }),
      );
    });

  it('a fetch without the bundle is refused, with NODE_EXTRA_CA_CERTS pointing at it it works', async () => {
    const without = await nodeFetch({});
    expect(without.code).toBe(1);
    expect(without.out).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
    const withBundle = await nodeFetch({ NODE_EXTRA_CA_CERTS: pki.ca });
    expect(withBundle.code, withBundle.out).toBe(0);
    expect(withBundle.out).toContain('"status"');
  });

  it('`installer build --ca-bundle` puts the bundle in the agent layer, where /init looks for it', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'plinth-tls-layer-'));
    try {
      const agentBundle = join(cacheDir, 'agent.mjs');
      writeFileSync(agentBundle, 'console.log("agent")\n');
      const { sha256File } = await import('../../src/build/digest.js');
      const ca = readCaBundle(pki.ca);
      const layer = await buildAgentLayer({
        cacheDir,
        key: 'k',
        agentBundle,
        caBundle: ca,
        inputs: { builderVersion: 'test', agentSha256: await sha256File(agentBundle), compression: 'none' },
      });
      const extract = join(cacheDir, 'x');
      execFileSync('mkdir', ['-p', extract]);
      execFileSync('cpio', ['-id', '--quiet'], { cwd: extract, input: readFileSync(join(layer.dir, layer.record.file)) });
      expect(readFileSync(join(extract, CA_BUNDLE_PATH), 'utf8')).toBe(ca);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
