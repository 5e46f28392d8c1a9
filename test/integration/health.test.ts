import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';
import { netbootAgent } from '../support/netboot-agent.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Health checks end to end on this host: the real agent runs the health script with
 * Debian's sysbench (scripts/packages.json) against a real controller over HTTP, for two
 * machines of one profile; the figures land in their facts as eDeploy tuples, in their
 * health runs, and in the profile's comparison (API and CLI). The disk check (fio) reads
 * disks, which this host's tests do not own: it is off here (diskSeconds 0); the VMs of
 * test/e2e/scripts-health.test.ts read theirs, and fio's output is parsed in
 * src/health/health.test.ts. Only the facts and the power switch are stand-ins.
 */
describe.each(backends)('health checks on $name', (backend) => {
  let t: TC;
  let url: string;
  let cli: ReturnType<typeof inProcessCli>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-health-'));
  const scriptDir = mkdtempSync(join(tmpdir(), 'plinth-health-run-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  const nodes = [1, 2].map((i) => ({ serial: `HEALTH-${backend.name}-${i}`, mac: `52:54:00:4e:00:0${i}`, name: '' }));

  beforeAll(async () => {
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    url = await t.controller.listen();
    cli = inProcessCli({ PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' });
    expect((await t.api('POST', '/api/v1/profiles/apply', { profiles: [{ name: 'compute', spec: [] }] })).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  const bootAndRun = (n: (typeof nodes)[number]) => netbootAgent(url, { ...n, scriptDir });

  it('measures two machines of one profile with sysbench, keeps the figures as facts and tuples, and compares them', async () => {
    for (const n of nodes) {
      expect(await bootAndRun(n)).toEqual({ result: 'done', next: 'poweroff' });
      n.name = (await t.api('GET', `/api/v1/machines?q=${n.serial}`)).json().items[0].name;
      expect((await t.api('GET', `/api/v1/machines/${n.name}`)).json().match.profile).toBe('compute');
    }
    // A library inspection script runs in a health check too, before the check.
    expect((await t.api('PUT', '/api/v1/scripts/discover', { content: '#!/bin/sh\necho "discovered $PLINTH_VAR_MACHINE_SERIAL"\n', inspect: true })).statusCode).toBe(201);
    const start = await cli('machine', 'health', nodes[0]!.name, nodes[1]!.name, '--cpu-seconds', '1', '--memory-seconds', '1', '--disk-seconds', '0');
    expect(start.stderr).toBe('');
    expect(start.stdout.trim().split('\n')).toEqual(nodes.map((n) => expect.stringMatching(new RegExp(`^${n.name}: inspecting \\(run \\S+\\): health check$`))));
    const outcomes = await Promise.all(nodes.map((n) => bootAndRun(n)));
    expect(outcomes).toEqual([{ result: 'done', next: 'poweroff' }, { result: 'done', next: 'poweroff' }]);

    for (const n of nodes) {
      const m = (await t.api('GET', `/api/v1/machines/${n.name}`)).json();
      expect(m.state).toBe('available');
      // The facts carry the benchmark tuples next to the inspected hardware list.
      const hw: string[][] = m.facts.hw;
      const loops = hw.filter(([c, , k]) => c === 'cpu' && k === 'loops_per_sec');
      expect(loops.map(([, id]) => id).sort()).toEqual(['logical', ...Array.from({ length: loops.length - 1 }, (_, i) => `logical_${i}`)].sort());
      for (const [, , , v] of loops) expect(Number(v)).toBeGreaterThan(0);
      expect(hw.some(([c, id, k]) => c === 'cpu' && id === 'logical' && k === 'threaded_bandwidth_1M')).toBe(true);
      expect(hw.some(([c, id, k]) => c === 'cpu' && id === 'logical_0' && k === 'bandwidth_1M')).toBe(true);
      const runs = (await t.api('GET', `/api/v1/machines/${n.name}/health`)).json().items;
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ machine: n.name, status: 'passed', problems: [] });
      expect(runs[0].tuples).toEqual(hw.filter(([c, , k]) => (c === 'cpu' && /^(bogomips|loops_per_sec|bandwidth_|threaded_bandwidth_)/.test(k ?? ''))));
      const results = (await t.api('GET', `/api/v1/machines/${n.name}/scripts`)).json().items.filter((r: { runId: string }) => r.runId === runs[0].runId);
      expect(results.map((r: { name: string }) => r.name).sort()).toEqual(['discover', 'plinth-health']);
      expect(results.find((r: { name: string }) => r.name === 'discover')).toMatchObject({ status: 'passed', output: `discovered ${n.serial}\n` });
      const show = await cli('health', 'show', n.name);
      expect(show.stdout).toMatch(/^cpu +logical +loops_per_sec +\d+$/m);
    }

    const compare = (await t.api('GET', '/api/v1/profiles/compute/health')).json();
    expect(compare).toMatchObject({ profile: 'compute', k: 3, minDrop: 0.1, outliers: {}, missing: [] });
    expect(compare.runs.map((r: { machine: string }) => r.machine).sort()).toEqual(nodes.map((n) => n.name).sort());
    const all = compare.figures.find((f: { figure: string }) => f.figure === 'cpu/logical/loops_per_sec');
    expect(all.machines).toHaveLength(2);
    expect(all.threshold).toBeNull();
    const table = await cli('health', 'compare', 'compute');
    expect(table.stdout).toMatch(/^cpu\/logical\/loops_per_sec +\d+ +\d+ +\d+$/m);
    expect(table.stdout).toContain('2 machine(s) with a health run: outliers need at least 3 to compare');
    expect((await t.api('DELETE', '/api/v1/scripts/discover')).statusCode).toBe(204);
  });

  it('refuses bad health parameters and misplaced ones, naming the field, and starts nothing', async () => {
    const m = nodes[0]!.name;
    const act = (action: string, body: unknown) => t.api('POST', `/api/v1/machines/${m}/actions/${action}`, body);
    const cases: [string, unknown, string][] = [
      ['inspect', { health: { cpuSeconds: 0 } }, 'health.cpuSeconds'],
      ['inspect', { health: { disks: ['../sda'] } }, 'health.disks'],
      ['inspect', { health: {}, scripts: [{ name: 'x', content: '#!/bin/sh\n' }] }, 'health'],
      ['wipe', { health: {} }, 'health'],
    ];
    for (const [action, body, field] of cases) {
      const r = await act(action, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.message).toContain(field);
    }
    expect((await t.api('GET', `/api/v1/machines/${m}`)).json().state).toBe('available');
    const bad = await cli('machine', 'health', m, '--cpu-seconds', 'ten');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--cpu-seconds');
    expect((await t.api('GET', '/api/v1/profiles/nope/health')).statusCode).toBe(404);
  });
});
