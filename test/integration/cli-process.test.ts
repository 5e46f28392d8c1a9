import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { BIN, ensureBuilt } from '../support/plinth-process.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const run = promisify(execFile);

/**
 * The real `plinth` process writing into real pipes: a listing far larger than a pipe's
 * buffer must arrive whole, and a reader that stops early must not produce a stack trace.
 */
describe('plinth CLI process in a pipe', () => {
  let t: TC;
  let env: NodeJS.ProcessEnv;
  const MACHINES = 150;
  beforeAll(async () => {
    ensureBuilt();
    t = await freshController(sqliteBackend);
    const url = await t.controller.listen();
    // About 5 KiB of JSON per machine: the listing is many times a pipe's 64 KiB.
    const tags = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`label-${i}`, 'x'.repeat(200)]));
    for (let i = 0; i < MACHINES; i++) {
      const r = await t.api('POST', '/api/v1/machines', { name: `pipe-${String(i).padStart(3, '0')}`, tags });
      expect(r.statusCode).toBe(201);
    }
    env = { PATH: process.env.PATH!, HOME: process.env.HOME!, PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' };
  }, 240_000);
  afterAll(async () => t?.close());

  it('writes the whole JSON listing into `| cat > file` and exits 0', async () => {
    const file = join(t.config.dataDir, 'list.json');
    const r = await run('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" machine list --json | cat > "${file}"`], { env });
    expect(r.stderr).toBe('');
    const items = JSON.parse(readFileSync(file, 'utf8')) as Array<{ name: string }>;
    expect(items).toHaveLength(MACHINES);
    expect(items.at(-1)!.name).toBe(`pipe-${MACHINES - 1}`);
  });

  it('exits quietly when the reader closes the pipe early (EPIPE)', async () => {
    const r = await run('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" machine list --json | head -c 100 > /dev/null`], { env });
    expect(r.stderr).toBe('');
  });

  it('takes an appliance password from standard input (appliance update --password-stdin)', async () => {
    expect((await t.api('POST', '/api/v1/appliances', { name: 'pipe-bmc', type: 'redfish', address: 'https://10.0.0.9', username: 'root', password: 'old-pw' })).statusCode).toBe(201);
    const r = await run('bash', ['-c', `set -o pipefail; printf 'new-pw\\n' | "${process.execPath}" "${BIN}" appliance update pipe-bmc --password-stdin`], { env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^updated pipe-bmc \(password\)/);
    expect((await t.controller.services.appliances.endpoint('pipe-bmc')).endpoint.password).toBe('new-pw');
    const empty = await run('bash', ['-c', `printf '' | "${process.execPath}" "${BIN}" appliance update pipe-bmc --password-stdin`], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toBe('plinth: --password-stdin: the password is empty\n');
  });
});
