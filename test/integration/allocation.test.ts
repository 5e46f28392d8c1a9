import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends, postgresBackend, pgAvailable } from '../support/backends.js';
import { freshController, startController, type TestController, type TestDatabase } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { inProcessCli } from '../support/cli.js';

const GiB = 2 ** 30;
const agent = { kind: 'agent' as const, name: 'installer' };

interface Hw {
  cpus?: number;
  memoryGiB?: number;
  diskGiB?: number;
  arch?: string;
  tags?: Record<string, string>;
}

let serial = 0;
/** A machine taken through a real inspection (inspect, installer started, facts reported) to `available`. */
async function inspected(t: TestController, name: string, hw: Hw = {}): Promise<void> {
  const n = ++serial;
  const mac = `52:54:00:a1:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
  const created = await t.api('POST', '/api/v1/machines', { name, tags: hw.tags ?? {}, identity: { macs: [mac] } });
  expect(created.statusCode, created.body).toBe(201);
  const { run, machine } = (await t.api('POST', `/api/v1/machines/${name}/actions/inspect`, {})).json();
  await t.controller.services.engine.act(name, 'installer-started', { actor: agent, runId: run.id });
  const base = makeFacts({ macs: [mac], memoryBytes: (hw.memoryGiB ?? 4) * GiB, disks: [['vda', (hw.diskGiB ?? 20) * GiB]] });
  const facts = { ...base, cpu: { ...base.cpu, architecture: hw.arch ?? 'x86_64', threads: hw.cpus ?? 2, cores: hw.cpus ?? 2 } };
  const m = await t.controller.inspection.complete(machine.id, run.id, facts, new Date().toISOString());
  expect(m.state).toBe('available');
}

describe.each(backends)('allocation on $name', (backend) => {
  let t: TestController & { drop?: () => Promise<void> };
  beforeAll(async () => {
    t = await freshController(backend);
    await inspected(t, 'small-1', { cpus: 2, memoryGiB: 4, diskGiB: 20 });
    await inspected(t, 'small-2', { cpus: 2, memoryGiB: 4, diskGiB: 20, tags: { rack: 'r1' } });
    await inspected(t, 'big-1', { cpus: 16, memoryGiB: 64, diskGiB: 500, tags: { rack: 'r1', gpu: 'a100' } });
    await inspected(t, 'big-2', { cpus: 16, memoryGiB: 64, diskGiB: 500, tags: { rack: 'r2' } });
    await inspected(t, 'arm-1', { cpus: 8, memoryGiB: 16, diskGiB: 100, arch: 'aarch64' });
  });
  afterAll(async () => t?.close());

  const allocate = (body: object, token?: string) => t.api('POST', '/api/v1/machines/allocate', body, token);
  const owners = async () => {
    const items = (await t.api('GET', '/api/v1/machines?limit=1000')).json().items as { name: string; owner: string | null }[];
    return Object.fromEntries(items.map((m) => [m.name, m.owner]));
  };
  const giveBack = async (names: string[]) => {
    for (const n of names) expect((await t.api('PATCH', `/api/v1/machines/${n}`, { owner: null })).statusCode).toBe(200);
  };

  it('picks machines that meet every constraint and sets their owner, with an allocate event', async () => {
    const r = await allocate({ owner: 'team-a', cpus: 8, memory: '32G', disk: '400GiB', arch: 'amd64' });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.owner).toBe('team-a');
    expect(body.machines.map((m: any) => m.name)).toEqual(['big-1']);
    expect(body.machines[0]).toMatchObject({ owner: 'team-a', state: 'available' });
    expect(body.machines[0].allocatedAt).not.toBeNull();
    const events = (await t.api('GET', '/api/v1/machines/big-1/events')).json().items;
    expect(events.at(-1)).toMatchObject({ action: 'allocate', actor: 'operator:admin', details: { owner: 'team-a', previous: null } });

    // Taken machines are not offered again; the other big one is.
    const again = await allocate({ owner: 'team-b', cpus: 8, arch: 'x86_64' });
    expect(again.json().machines.map((m: any) => m.name)).toEqual(['big-2']);
    await giveBack(['big-1', 'big-2']);
  });

  it('matches tags (key and key=value, all of them), arch and the token name as default owner', async () => {
    const r = await allocate({ tags: ['rack=r1', 'gpu'] });
    expect(r.json().machines.map((m: any) => m.name)).toEqual(['big-1']);
    expect(r.json().owner).toBe('admin');
    const arm = await allocate({ owner: 'ci', arch: 'arm64' });
    expect(arm.json().machines.map((m: any) => [m.name, m.owner])).toEqual([['arm-1', 'ci']]);
    await giveBack(['big-1', 'arm-1']);
  });

  it('takes the whole count or nothing, and the 409 says what was short', async () => {
    const before = await owners();
    const r = await allocate({ owner: 'greedy', count: 3, memory: 32 * GiB });
    expect(r.statusCode).toBe(409);
    const err = r.json().error;
    expect(err.code).toBe('conflict');
    expect(err.message).toBe(
      'cannot allocate 3 machine(s) (memory>=32 GiB): only 2 available unowned machine(s) match (of 5 available and unowned: 3 less than 32 GiB memory)',
    );
    expect(err.details).toMatchObject({ requested: 3, matched: 2, candidates: 5, shortBy: 1 });
    // Nothing was held: the two that matched were given back with the rollback.
    expect(await owners()).toEqual(before);
    expect((await allocate({ owner: 'greedy', count: 3, memory: '16G' })).statusCode).toBe(200);
    await giveBack(['arm-1', 'big-1', 'big-2']);
  });

  it('never offers machines in maintenance or outside available, and release clears the owner', async () => {
    await t.api('PATCH', '/api/v1/machines/small-1', { maintenance: true, maintenanceReason: 'fan' });
    const r = await allocate({ owner: 'x', count: 4, cpus: 2 });
    expect(r.statusCode).toBe(200);
    expect(r.json().machines.map((m: any) => m.name).sort()).toEqual(['arm-1', 'big-1', 'big-2', 'small-2']);
    const none = await allocate({ owner: 'y' });
    expect(none.statusCode).toBe(409);
    expect(none.json().error.message).toBe('cannot allocate 1 machine(s) (no constraints): only 0 available unowned machine(s) match (none is available and unowned)');
    await t.api('PATCH', '/api/v1/machines/small-1', { maintenance: false });

    // An allocated machine deployed and released comes back unowned.
    const engine = t.controller.services.engine;
    await engine.act('small-2', 'deploy', { actor: { kind: 'operator', name: 'admin' } });
    const deploying = (await t.api('GET', '/api/v1/machines/small-2')).json();
    await engine.act('small-2', 'installer-started', { actor: agent, runId: deploying.currentRunId });
    await engine.act('small-2', 'deploy-done', { actor: agent, runId: deploying.currentRunId });
    expect((await t.api('GET', '/api/v1/machines/small-2')).json()).toMatchObject({ state: 'deployed', owner: 'x' });
    const released = await t.api('POST', '/api/v1/machines/small-2/actions/release', { wipe: 'none' });
    expect(released.statusCode, released.body).toBe(200);
    expect(released.json().machine).toMatchObject({ state: 'available', owner: null, allocatedAt: null });
    const events = (await t.api('GET', '/api/v1/machines/small-2/events')).json().items;
    expect(events.at(-1)).toMatchObject({ action: 'release', details: { owner: 'x' } });
    await giveBack(['arm-1', 'big-1', 'big-2']);
  });

  it('refuses bad constraints with a 400 naming the field', async () => {
    const cases: [object, string][] = [
      [{ count: 0 }, 'count'],
      [{ count: 'two' }, 'count'],
      [{ cpus: -1 }, 'cpus'],
      [{ memory: 'lots' }, 'memory'],
      [{ disk: '12 parsecs' }, 'disk'],
      [{ arch: 'x86 64' }, 'arch'],
      [{ tags: ['=v'] }, 'tags'],
      [{ profile: 'no-such-profile' }, 'profile'],
      [{ owner: '' }, 'owner'],
      [{ colour: 'blue' }, 'colour'],
    ];
    for (const [body, field] of cases) {
      const r = await allocate(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.body, JSON.stringify(body)).toContain(field);
    }
    const reader = (await t.api('POST', '/api/v1/tokens', { name: 'watcher', role: 'reader' })).json().token;
    expect((await allocate({}, reader)).statusCode).toBe(403);
  });

  it('gives racing clients disjoint machines: each machine has exactly one owner', async () => {
    const racers = Array.from({ length: 8 }, (_, i) => allocate({ owner: `racer-${i}` }));
    const results = await Promise.all(racers);
    const won = results.filter((r) => r.statusCode === 200).map((r) => r.json().machines[0]);
    const lost = results.filter((r) => r.statusCode !== 200);
    expect(won).toHaveLength(5);
    expect(lost.map((r) => r.statusCode)).toEqual([409, 409, 409]);
    expect(new Set(won.map((m: any) => m.name)).size).toBe(5);
    const after = await owners();
    for (const m of won) expect(after[m.name]).toBe(m.owner);
    await giveBack(won.map((m: any) => m.name));
  });

  it('plinth machine allocate prints the machines as a table, or JSON', async () => {
    await t.controller.listen();
    const cli = inProcessCli({ PLINTH_URL: t.controller.url!, PLINTH_TOKEN: t.adminToken });
    const table = await cli('machine', 'allocate', '--owner', 'cli', '--cpus', '16', '--tag', 'rack=r2');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toBe('name state power owner flags serial macs');
    expect(table.stdout.split('\n')[1]).toMatch(/^big-2 available \S+ cli /);
    const json = await cli('machine', 'allocate', '--owner', 'cli', '-n', '2', '--memory', '4G', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).machines.map((m: any) => m.name)).toEqual(['arm-1', 'big-1']);
    const short = await cli('machine', 'allocate', '--disk', '1T');
    expect(short.code).not.toBe(0);
    expect(short.stderr.trim().split('\n')).toHaveLength(1);
    expect(short.stderr).toContain('only 0 available unowned machine(s) match');
    const bad = await cli('machine', 'allocate', '--memory', 'heaps');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('memory');
  });
});

/** Two controllers on one PostgreSQL database race allocations: the database decides, not process memory. */
describe.runIf(pgAvailable)('allocation from two controllers on one PostgreSQL', () => {
  let db: TestDatabase;
  let a: TestController;
  let b: TestController;
  beforeAll(async () => {
    db = await postgresBackend.create();
    a = await startController(db);
    b = await startController({ ...db, dataDir: mkdtempSync(join(tmpdir(), 'plinth-b-')) });
    for (let i = 0; i < 12; i++) await inspected(a, `pool-${String(i).padStart(2, '0')}`, { cpus: 4 });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('never hands one machine to two owners, and each request gets all it asked for or nothing', async () => {
    const token = a.adminToken;
    // 10 requests for 3 machines each over 12 machines: at most 4 can be satisfied.
    const requests = Array.from({ length: 10 }, (_, i) => (i % 2 ? b : a).api('POST', '/api/v1/machines/allocate', { owner: `o${i}`, count: 3 }, token));
    const results = await Promise.all(requests);
    const won = results.filter((r) => r.statusCode === 200).map((r) => r.json());
    expect(results.filter((r) => r.statusCode !== 200).every((r) => r.statusCode === 409)).toBe(true);
    expect(won).toHaveLength(4);
    const names = won.flatMap((w) => w.machines.map((m: any) => m.name));
    expect(new Set(names).size).toBe(12);
    for (const w of won) expect(w.machines).toHaveLength(3);
    const rows = (await b.api('GET', '/api/v1/machines?limit=100', undefined, token)).json().items;
    const byOwner = new Map<string, string[]>();
    for (const m of rows) byOwner.set(m.owner, [...(byOwner.get(m.owner) ?? []), m.name]);
    for (const w of won) expect(byOwner.get(w.owner)?.sort()).toEqual(w.machines.map((m: any) => m.name).sort());
  });
});
