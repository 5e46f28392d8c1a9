import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { sqliteBackend } from '../support/backends.js';
import { startController, type TestController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { waitFor } from '../support/e2e.js';
import { freePort } from '../support/plinth-process.js';
import { writeFiles as write } from '../support/trees.js';

/**
 * eDeploy's trees end to end without a VM: trees imported through the CLI, served by the
 * controller's real rsync daemon (Debian's rsync) and over HTTP, and a host root directory
 * installed from one version and upgraded to the next by the real `edeploy` command, with
 * eDeploy's exclude / add_only / pre / post semantics. Trees live in the data directory, not
 * the database, so one backend is enough.
 */
const run = promisify(execFile);
const EDEPLOY = resolve('bin/edeploy');
const FROM = 'D7-F.1.0.0';
const TO = 'D7-F.1.0.1';

describe('trees: import, rsync and HTTP serving, edeploy upgrade and verify', () => {
  let db: Awaited<ReturnType<typeof sqliteBackend.create>>;
  let t: TestController;
  let cli: ReturnType<typeof inProcessCli>;
  let port: number;
  let url: string;
  const work = mkdtempSync(join(tmpdir(), 'plinth-trees-'));
  const host = join(work, 'host');
  const marks = join(work, 'marks');
  const edeploy = (...args: string[]) =>
    run('sh', [EDEPLOY, ...args], { env: { ...process.env, EDEPLOY_ROOT: host, MARKS: marks } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  beforeAll(async () => {
    db = await sqliteBackend.create();
    port = await freePort();
    t = await startController(db, { trees: { rsyncListen: `127.0.0.1:${port}` } });
    url = await t.controller.listen();
    cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    mkdirSync(marks);
    // Version 1.0.0 as a directory, 1.0.1 as a compressed tarball: both forms of import.
    write(join(work, 'v100'), { 'etc/mysql/my.cnf': 'v1\n', 'etc/mysql/local.cnf': 'tree v1\n', 'etc/mysql/old.cnf': 'gone in v2\n' });
    write(join(work, 'v100'), { 'usr/bin/mysqld': 'binary 1\n' }, 0o755);
    // Whole systems, as trees are: the host's /var/lib/edeploy sits in a directory of the tree.
    for (const v of ['v100', 'v101']) mkdirSync(join(work, v, 'var/lib/dpkg'), { recursive: true });
    write(join(work, 'v101'), { 'etc/mysql/my.cnf': 'v2\n', 'etc/mysql/local.cnf': 'tree v2\n', 'etc/mysql/new.cnf': 'from the tree\n', 'etc/mysql/seed.cnf': 'seed from the tree\n' });
    write(join(work, 'v101'), { 'usr/bin/mysqld': 'binary 2\n' }, 0o755);
    execFileSync('tar', ['-C', join(work, 'v101'), '-czf', join(work, 'v101.tgz'), '.']);
    write(join(work, 'step'), {
      exclude: '# the host keeps its own\n/etc/mysql/local.cnf\n',
      add_only: '/etc/mysql/new.cnf\n/etc/mysql/seed.cnf\n',
      pre: '#!/bin/sh\necho "pre $ROLE $FROM $TO" > "$MARKS/pre"\n',
      post: '#!/bin/sh\n{ echo "post $ROLE $FROM $TO"; cat "$EDEPLOY_ROOT/etc/mysql/my.cnf"; } > "$MARKS/post"\nexit 100\n',
    });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('imports a directory and a tarball, stores the upgrade step and lists both', async () => {
    const a = await cli('tree', 'import', 'mysql', FROM, join(work, 'v100'));
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout).toContain(`tree mysql ${FROM}: `);
    const b = await cli('tree', 'import', 'mysql', TO, join(work, 'v101.tgz'), '--json');
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ role: 'mysql', version: TO, bytes: 'v2\n'.length + 'tree v2\n'.length + 'from the tree\n'.length + 'seed from the tree\n'.length + 'binary 2\n'.length });
    const s = await cli('tree', 'upgrade-path', 'mysql', FROM, TO, join(work, 'step'));
    expect(s.code).toBe(0);
    const l = await cli('tree', 'list', '--json');
    const items = JSON.parse(l.stdout) as { role: string; version: string; upgrades: string[] }[];
    expect(items.map((i) => [i.role, i.version, i.upgrades])).toEqual([
      ['mysql', FROM, [TO]],
      ['mysql', TO, []],
    ]);
    // The step as stored: the scripts kept byte for byte.
    const step = (await t.api('GET', `/api/v1/trees/mysql/${FROM}/upgrades/${TO}`)).json();
    expect(step.post).toBe(readFileSync(join(work, 'step', 'post'), 'utf8'));
  });

  it('uploads an image through the same streamed upload as tree imports', async () => {
    writeFileSync(join(work, 'vmlinuz'), 'not really a kernel');
    const r = await cli('image', 'upload', join(work, 'vmlinuz'), '--name', 'k1', '--kind', 'kernel', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'k1', kind: 'kernel', sizeBytes: 'not really a kernel'.length });
    const dup = await cli('image', 'upload', join(work, 'vmlinuz'), '--name', 'bad name');
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/name/);
  });

  it('serves a tree as the eDeploy .edeploy tarball over HTTP', async () => {
    const res = await fetch(`${url}/install/mysql-${TO}.edeploy`);
    expect(res.status).toBe(200);
    writeFileSync(join(work, 'got.edeploy'), Buffer.from(await res.arrayBuffer()));
    const names = execFileSync('tar', ['-tzf', join(work, 'got.edeploy')], { encoding: 'utf8' }).split('\n');
    expect(names).toContain('./etc/mysql/new.cnf');
    expect((await fetch(`${url}/install/mysql-D7-F.9.edeploy`)).status).toBe(404);
  });

  it('installs a host from rsync, upgrades it with exclude, add_only, pre and post, and verifies it', async () => {
    // What the tree deploy lays down: the tree, and the host's edeploy state.
    await waitFor('the rsync daemon', 30_000, async () =>
      run('rsync', ['--list-only', `rsync://127.0.0.1:${port}/install/`]).then(
        () => true,
        () => undefined,
      ),
    );
    await run('rsync', ['-a', `rsync://127.0.0.1:${port}/install/${FROM}/mysql/`, `${host}/`]);
    write(host, { 'var/lib/edeploy/conf': `ROLE=mysql\nVERS=${FROM}\nRSERV=127.0.0.1\nRSERV_PORT=${port}\nPROFILE=db\n` });
    expect(readFileSync(join(host, 'etc/mysql/my.cnf'), 'utf8')).toBe('v1\n');
    // The host's own changes: a local file the upgrade excludes, an add_only file already there.
    write(host, { 'etc/mysql/local.cnf': 'local edit\n', 'etc/mysql/seed.cnf': 'local seed\n' });

    expect((await edeploy('role')).stdout).toBe('mysql\n');
    expect((await edeploy('profile')).stdout).toBe('db\n');
    expect((await edeploy('list')).stdout).toBe(`${TO}\n`);

    const dry = await edeploy('test-upgrade', TO);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('etc/mysql/my.cnf');
    expect(dry.stdout).not.toContain('local.cnf');
    expect(readFileSync(join(host, 'etc/mysql/my.cnf'), 'utf8')).toBe('v1\n');
    expect(existsSync(join(marks, 'pre'))).toBe(false);

    const up = await edeploy('upgrade', TO);
    // This host has no controller to report to (tree-hosts.test.ts has one): said, not fatal.
    expect(up.stderr).toBe(`edeploy: not reported to the controller: no PLINTH_URL in ${host}/var/lib/edeploy/conf\n`);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('reboot needed');
    expect(readFileSync(join(host, 'etc/mysql/my.cnf'), 'utf8')).toBe('v2\n');
    expect(readFileSync(join(host, 'usr/bin/mysqld'), 'utf8')).toBe('binary 2\n');
    expect(readFileSync(join(host, 'etc/mysql/local.cnf'), 'utf8')).toBe('local edit\n'); // exclude
    expect(readFileSync(join(host, 'etc/mysql/new.cnf'), 'utf8')).toBe('from the tree\n'); // add_only, absent
    expect(readFileSync(join(host, 'etc/mysql/seed.cnf'), 'utf8')).toBe('local seed\n'); // add_only, present
    expect(existsSync(join(host, 'etc/mysql/old.cnf'))).toBe(false); // gone from the tree
    expect(readFileSync(join(marks, 'pre'), 'utf8')).toBe(`pre mysql ${FROM} ${TO}\n`);
    // post ran after the files arrived, told the version the host came from (not the one it is at now)
    expect(readFileSync(join(marks, 'post'), 'utf8')).toBe(`post mysql ${FROM} ${TO}\nv2\n`);
    expect((await edeploy('version')).stdout).toBe(`${TO}\n`);

    // verify: nothing differs, then exactly the file changed by hand.
    expect((await edeploy('verify')).stdout).toBe('');
    writeFileSync(join(host, 'usr/bin/mysqld'), 'patched by hand\n');
    const v = await edeploy('verify');
    expect(v.code).toBe(0);
    expect(v.stdout).toBe('usr/bin/mysqld\n');
  });

  it('refuses an upgrade with no path, and leaves the host as it was', async () => {
    const r = await edeploy('upgrade', 'D7-F.9.9.9');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no upgrade from ${TO} to D7-F.9.9.9 for role mysql`);
    expect((await edeploy('version')).stdout).toBe(`${TO}\n`);
  });

  it('refuses bad input, naming the field, and keeps nothing of it', async () => {
    const put = (path: string, body: Buffer | string, type = 'application/octet-stream') =>
      fetch(`${url}${path}`, { method: 'PUT', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': type }, body });
    const notTar = await put('/api/v1/trees/web/1.0', 'this is not a tar archive');
    expect(notTar.status).toBe(400);
    expect(((await notTar.json()) as { error: { details: { field: string } } }).error.details.field).toBe('body');
    // A member climbing out of the tree: tar refuses it, nothing lands anywhere.
    execFileSync('python3', ['-c', `import tarfile,io\nt=tarfile.open('${join(work, 'evil.tar')}','w')\ni=tarfile.TarInfo('../../escaped')\nd=b'x'\ni.size=1\nt.addfile(i,io.BytesIO(d))\nt.close()`]);
    const evil = await put('/api/v1/trees/web/1.0', readFileSync(join(work, 'evil.tar')));
    expect(evil.status).toBe(400);
    expect(existsSync(join(t.config.dataDir, 'escaped'))).toBe(false);
    expect(existsSync(join(t.config.dataDir, 'trees', 'escaped'))).toBe(false);
    expect((await t.api('GET', '/api/v1/trees/web/1.0')).statusCode).toBe(404);
    expect((await put('/api/v1/trees/we..b/1.0', 'x')).status).toBe(400);
    const again = await cli('tree', 'import', 'mysql', FROM, join(work, 'v100'));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists');
    const noShebang = await t.api('PUT', `/api/v1/trees/mysql/${FROM}/upgrades/${TO}`, { pre: 'echo no interpreter' });
    expect(noShebang.statusCode).toBe(400);
    expect(noShebang.json().error.details.field).toBe('pre');
    mkdirSync(join(work, 'badstep'));
    writeFileSync(join(work, 'badstep', 'postinst'), '#!/bin/sh\n');
    const bad = await cli('tree', 'upgrade-path', 'mysql', FROM, TO, join(work, 'badstep'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('postinst');
    // The stored step is unchanged by the refusals.
    expect((await t.api('GET', `/api/v1/trees/mysql/${FROM}/upgrades/${TO}`)).json().pre).toBe(readFileSync(join(work, 'step', 'pre'), 'utf8'));
  });
});
