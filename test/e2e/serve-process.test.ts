import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, ensureBuilt, startServe, type ServeProcess } from '../support/plinth-process.js';
import { OPERATOR_ACTIONS, allowedActions } from '../../src/lifecycle/states.js';

const exec = promisify(execFile);

describe('`plinth serve` as a process', () => {
  let dataDir: string;
  let serve: ServeProcess;
  beforeAll(async () => {
    ensureBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'plinth-serve-'));
    serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: '127.0.0.1:0' });
  });
  afterAll(async () => {
    await serve?.stop('SIGKILL');
  });

  it('writes structured JSON logs and says where the admin token is', () => {
    expect(serve.logs.every((l) => !l.unparsed)).toBe(true);
    const tokenLine = serve.logs.find((l) => String(l.msg).startsWith('admin token written to'));
    expect(tokenLine?.path).toBe(join(dataDir, 'admin.token'));
    expect(statSync(join(dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dataDir, 'plinth.sqlite'))).toBe(true);
  });

  it('is driven by the `plinth` command next to its data directory', async () => {
    const env = { ...process.env, PLINTH_URL: serve.url, PLINTH_DATA_DIR: dataDir, PLINTH_CLI_CONFIG: '/nonexistent' };
    const created = await exec(process.execPath, [BIN, 'machine', 'create', 'proc-1', '--serial', 'P-1', '--json'], { env });
    expect(JSON.parse(created.stdout).name).toBe('proc-1');
    const usage = await exec(process.execPath, [BIN, 'machine', 'action', 'proc-1', 'teleport'], { env }).catch((e) => e);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe(`plinth: unknown action 'teleport'; one of: ${OPERATOR_ACTIONS.join(', ')}\n`);
    const refused = await exec(process.execPath, [BIN, 'machine', 'action', 'proc-1', 'release'], { env }).catch((e) => e);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`plinth: cannot release machine proc-1: it is enrolled; allowed: ${allowedActions('enrolled').join(', ')}\n`);
  });

  it('finishes in-flight requests and closes the database cleanly on SIGTERM', async () => {
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let i = 0; i < 200; i++) {
      await fetch(`${serve.url}/api/v1/machines`, { method: 'POST', headers: auth, body: JSON.stringify({ name: `bulk-${i}`, tags: { i: String(i) } }) });
    }
    const inflight = fetch(`${serve.url}/api/v1/machines?limit=1000`, { headers: auth });
    await serve.waitForLog((l) => l.msg === 'incoming request' && String((l.req as { url?: string })?.url).includes('limit=1000'));
    const code = await serve.stop('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { items: unknown[] }).items).toHaveLength(201);
    expect(code).toBe(0);
    expect(serve.logs.some((l) => l.msg === 'controller stopped')).toBe(true);
    // SQLite removes its write-ahead log when the last connection closes cleanly.
    expect(existsSync(join(dataDir, 'plinth.sqlite-wal'))).toBe(false);
  });
});

describe('`plinth serve --tftp`', () => {
  it('serves the iPXE binaries over TFTP next to HTTP', async () => {
    ensureBuilt();
    const { freePort } = await import('../support/plinth-process.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'plinth-serve-tftp-'));
    const tftpPort = await freePort();
    const serve = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: '127.0.0.1:0' }, ['--tftp', `127.0.0.1:${tftpPort}`]);
    try {
      const line = await serve.waitForLog((l) => l.msg === 'TFTP server listening');
      expect(line).toMatchObject({ port: tftpPort, root: '/usr/lib/ipxe' });
      const out = join(dataDir, 'undionly.kpxe');
      await exec('tftp', ['-m', 'binary', '127.0.0.1', String(tftpPort), '-c', 'get', 'undionly.kpxe', out], { timeout: 30_000 });
      expect(readFileSync(out).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
    } finally {
      await serve.stop();
    }
  });
});
