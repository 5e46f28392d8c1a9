import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { netbootAgent } from '../support/netboot-agent.js';
import { runScript } from '../../src/agent/steps/scripts.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Operators' scripts run by the real agent (real processes, /bin/sh) against a real
 * controller over HTTP: discovery scripts from the library in every inspection, a test run
 * of given scripts on an available machine, a failing script marking the machine and naming
 * itself, results with output and files, in the API and `plinth machine show --json`.
 * Only the hardware (facts) and the power switch are stand-ins, as in agent.test.ts.
 */
describe.each(backends)('scripts on machines on $name', (backend) => {
  let t: TC;
  let url: string;
  let cli: ReturnType<typeof inProcessCli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-scripts-'));
  const scriptDir = mkdtempSync(join(tmpdir(), 'plinth-scripts-run-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const mac = '52:54:00:5c:00:01';
  const serial = `SCRIPTS-${backend.name}`;
  /** The machine's name, once it enrolled. */
  let name = '';

  beforeAll(async () => {
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    url = await t.controller.listen();
    cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
  });
  afterAll(async () => t?.close());

  const bootAndRun = () => netbootAgent(url, { serial, mac, scriptDir });

  it('runs the library’s discovery scripts in an inspection, with the machine’s variables, and keeps their output and files', async () => {
    const add = await cli(
      'script',
      'add',
      file('discover.sh', '#!/bin/sh\necho "machine $PLINTH_VAR_MACHINE_NAME serial $PLINTH_VAR_MACHINE_SERIAL"\ngrep -o \'"name": "[^"]*"\' "$PLINTH_VARIABLES" | head -n1\necho "firmware 2.1" > "$PLINTH_OUTPUT_DIR/firmware.txt"\necho to stderr >&2\n'),
      '--inspect',
      '--timeout',
      '120',
    );
    expect(add.stderr).toBe('');
    expect(add.stdout).toContain('script discover stored, runs in every inspection (timeout 120 s)');
    // Not an inspection script: stays in the library, never runs on its own.
    expect((await cli('script', 'add', file('burnin.sh', '#!/bin/sh\nexit 0\n'))).code).toBe(0);

    const outcome = await bootAndRun();
    expect(outcome).toEqual({ result: 'done', next: 'poweroff' });
    name = (await t.api('GET', `/api/v1/machines?q=${serial}`)).json().items[0].name;
    const show = await cli('machine', 'show', name, '--json');
    expect(show.code).toBe(0);
    const m = JSON.parse(show.stdout);
    expect(m.state).toBe('available');
    expect(m.scripts).toHaveLength(1);
    const r = m.scripts[0];
    expect(r).toMatchObject({ name: 'discover', status: 'passed', exitCode: 0, timedOut: false, files: [{ name: 'firmware.txt', sizeBytes: 'firmware 2.1\n'.length, truncated: false }] });
    expect(r.output).toContain(`machine ${m.name} serial ${serial}`);
    expect(r.output).toContain(`"name": "${m.name}"`);
    expect(r.output).toContain('to stderr');
    const f = await fetch(`${url}/api/v1/machines/${m.id}/scripts/${r.id}/files/firmware.txt`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    expect(await f.text()).toBe('firmware 2.1\n');
    // The run shows the script as a step, and its log says how it went.
    const run = (await t.api('GET', `/api/v1/runs/${r.runId}`)).json();
    expect(run.steps.find((s: { name: string }) => s.name === 'script-discover')).toMatchObject({ status: 'succeeded' });
    const log = (await t.api('GET', `/api/v1/runs/${r.runId}/log`)).json().items.map((l: { line: string }) => l.line);
    expect(log.some((l: string) => /^script discover: exited 0 in [\d.]+ s$/.test(l))).toBe(true);
  });

  it('runs given scripts on an available machine instead of the library’s; the first failure marks the machine, naming the script', async () => {
    const ok = file('cpu-ok.sh', '#!/bin/sh\necho all cores fine\n');
    const memtest = file('memtest.sh', '#!/bin/sh\necho testing\necho "bad DIMM A1" >&2\nexit 3\n');
    const never = file('never.sh', '#!/bin/sh\necho should not run\n');
    const start = await cli('machine', 'script', name, '--script', ok, '--script', memtest, '--script', never);
    expect(start.stderr).toBe('');
    expect(start.stdout).toMatch(/: inspecting \(run \S+\): cpu-ok, memtest, never$/m);
    const outcome = await bootAndRun();
    expect(outcome.result).toBe('failed');
    const m = JSON.parse((await cli('machine', 'show', name, '--json')).stdout);
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'script', stage: 'script-memtest' });
    expect(m.lastError.message).toBe('script memtest exited 3: bad DIMM A1');
    const byName = Object.fromEntries(m.scripts.map((r: { name: string }) => [r.name, r]));
    expect(byName['cpu-ok']).toMatchObject({ status: 'passed', output: 'all cores fine\n' });
    expect(byName['memtest']).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(byName['never']).toBeUndefined();
    // The library's discovery script did not run in this run: its only result is the first one.
    const all = (await t.api('GET', `/api/v1/machines/${m.id}/scripts`)).json().items;
    expect(all.filter((r: { name: string }) => r.name === 'discover')).toHaveLength(1);
    const table = await cli('machine', 'scripts', name);
    expect(table.stdout.split('\n')[1]).toMatch(/^memtest failed 3 /);
  });

  it('refuses bad scripts and misplaced ones, naming the field, and changes nothing', async () => {
    const m = (await t.api('GET', `/api/v1/machines/${name}`)).json();
    const act = (action: string, body: unknown) => t.api('POST', `/api/v1/machines/${m.id}/actions/${action}`, body);
    const wrongAction = await act('wipe', { scripts: [{ name: 'x', content: '#!/bin/sh\n' }] });
    expect(wrongAction.statusCode).toBe(400);
    expect(wrongAction.json().error.details.field).toBe('scripts');
    const twice = await act('retry', { scripts: [{ name: 'a', content: '#!/bin/sh\n' }, { name: 'a', content: '#!/bin/sh\n' }] });
    expect(twice.statusCode).toBe(400);
    const noShebang = await t.api('PUT', '/api/v1/scripts/lib1', { content: 'echo hi' });
    expect(noShebang.statusCode).toBe(400);
    expect(noShebang.json().error.message).toMatch(/content/);
    const badName = await t.api('PUT', '/api/v1/scripts/Bad..Name', { content: '#!/bin/sh\n' });
    expect(badName.statusCode).toBe(400);
    expect((await t.api('GET', `/api/v1/machines/${m.id}`)).json().state).toBe('inspect-failed');
    expect((await t.api('GET', '/api/v1/scripts')).json().items.map((s: { name: string }) => s.name)).toEqual(['burnin', 'discover']);
    const cliBad = await cli('machine', 'script', name, '--script', file('plain.txt', 'no interpreter\n'));
    expect(cliBad.code).not.toBe(0);
    expect(cliBad.stderr.trim().split('\n')).toHaveLength(1);
    expect(cliBad.stderr).toContain('#!');
  });

  it('kills a script that runs past its timeout, and what it started', async () => {
    const r = await runScript({ name: 'hang', content: '#!/bin/sh\necho started\nsleep 600 &\nsleep 600\n', timeoutSeconds: 1 }, {}, scriptDir);
    expect(r).toMatchObject({ exitCode: null, timedOut: true, output: 'started\n' });
  });
});
