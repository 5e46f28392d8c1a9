import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { FakeClock } from '../../src/core/clock.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/** What iPXE sends: its settings as query parameters (empty when unset). */
function ipxeQuery(o: { uuid?: string; serial?: string; asset?: string; manufacturer?: string; mac?: string; mac1?: string; chain?: string }) {
  const p = new URLSearchParams({
    uuid: o.uuid ?? '',
    serial: o.serial ?? '',
    asset: o.asset ?? '',
    manufacturer: o.manufacturer ?? '',
    product: 'Standard PC',
    mac: o.mac ?? '',
    mac0: o.mac ?? '',
    mac1: o.mac1 ?? '',
    arch: 'x86_64',
    platform: 'pcbios',
    chain: o.chain ?? '',
    attempt: '1',
  });
  return `/boot/machine.ipxe?${p}`;
}

const tokenOf = (script: string) => /plinth\.token=(\S+)/.exec(script)?.[1];
const runOf = (script: string) => /plinth\.run=(\S+)/.exec(script)?.[1];
const attemptOf = (script: string) => /vmlinuz\?attempt=(\S+)/.exec(script)?.[1];

describe.each(backends)('boot service and agent API on $name', (backend) => {
  let t: TC;
  const clock = new FakeClock('2026-06-01T08:00:00.000Z');
  const dir = mkdtempSync(join(tmpdir(), 'plinth-installer-'));
  const kernel = randomBytes(300_000);
  writeFileSync(join(dir, 'vmlinuz'), kernel);
  writeFileSync(join(dir, 'initrd.img'), randomBytes(1_000_000));
  let installerBuilt = true;
  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { clock, installer: () => (installerBuilt ? { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') } : null) });
  });
  afterAll(async () => t?.close());

  const boot = async (path: string) => {
    const r = await t.controller.app.inject({ method: 'GET', url: path, headers: { host: '10.0.2.2:7708', 'user-agent': 'iPXE/1.21.1+ (g988d2)' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body.startsWith('#!ipxe\n')).toBe(true);
    return r.body;
  };
  const agent = (token: string, path: string, body: unknown) =>
    t.controller.app.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${token}` }, payload: body as object });
  const machine = async (key: string) => (await t.api('GET', `/api/v1/machines/${key}`)).json();

  it('hands out a chain script that passes identity, every MAC and the firmware, with retries', async () => {
    const s = await boot('/boot.ipxe');
    expect(s).toContain('set plinth-base http://10.0.2.2:7708');
    for (const v of ['${uuid}', '${serial:uristring}', '${asset:uristring}', '${netX/mac}', '${net0/mac}', '${net7/mac}', '${buildarch}', '${platform}']) expect(s).toContain(v);
    expect(s).toMatch(/chain --autofree \$\{plinth-base\}\/boot\/machine\.ipxe\?.*&chain=[A-Za-z0-9_-]+&attempt=\$\{attempt\} && goto done \|\|/);
    expect(s).toMatch(/inc attempt[\s\S]*sleep \$\{attempt\}[\s\S]*goto retry/);
  });

  it('answers other clients that follow the DHCP boot filename (an installer preseeding from it) with comments only', async () => {
    const before = await t.controller.services.store.db.selectFrom('boot_chains').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const r = await t.controller.app.inject({ method: 'GET', url: '/boot.ipxe', headers: { host: '10.0.2.2:7708', 'user-agent': 'Wget' } });
    expect(r.statusCode).toBe(200);
    const lines = r.body.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.startsWith('#')).toBe(true);
    expect(r.body).not.toContain('chain');
    const after = await t.controller.services.store.db.selectFrom('boot_chains').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  let firstToken = '';
  let runId = '';
  let attemptId = '';
  it('enrols an unknown machine on the spot and sends it to the installer with a run token', async () => {
    const chain = /&chain=([A-Za-z0-9_-]+)&/.exec(await boot('/boot.ipxe'))![1]!;
    clock.advance(2000);
    const s = await boot(ipxeQuery({ uuid: '6a4c1e52-0000-4000-8000-000000000001', serial: 'VM-SER-1', manufacturer: 'QEMU', mac: '52:54:00:b0:00:01', chain }));
    firstToken = tokenOf(s)!;
    runId = runOf(s)!;
    attemptId = attemptOf(s)!;
    expect(firstToken).toMatch(/^plrun_/);
    expect(s).toContain(`kernel http://10.0.2.2:7708/boot/installer/vmlinuz?attempt=${attemptId} initrd=initrd.img plinth.url=http://10.0.2.2:7708 plinth.run=${runId} plinth.token=${firstToken} console=tty0 console=ttyS0,115200n8 || goto installer-failed`);
    expect(s).toContain(`initrd --name initrd.img http://10.0.2.2:7708/boot/installer/initrd.img?attempt=${attemptId} || goto installer-failed`);
    const list = (await t.api('GET', '/api/v1/machines?q=VM-SER-1')).json().items;
    expect(list).toHaveLength(1);
    const m = list[0];
    expect(m).toMatchObject({ state: 'inspecting', currentRunId: runId, identity: { systemUuid: '6a4c1e52-0000-4000-8000-000000000001', serial: 'VM-SER-1', manufacturer: 'QEMU', macs: ['52:54:00:b0:00:01'] } });
    const events = (await t.api('GET', `/api/v1/machines/${m.id}/events`)).json().items.map((e: any) => [e.actor, e.action, e.reason]);
    expect(events).toEqual([
      ['system:boot-service', 'enroll', 'network-booted unannounced'],
      ['system:boot-service', 'inspect', 'network-booted while enrolled'],
    ]);
    const trace = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json();
    expect(trace.attempts).toHaveLength(1);
    expect(trace.attempts[0]).toMatchObject({ id: attemptId, decision: 'installer', runId, bootMac: '52:54:00:b0:00:01', platform: 'pcbios', arch: 'x86_64' });
    expect(trace.attempts[0].stages.map((x: any) => x.stage)).toEqual(['chain-script', 'machine-script']);
    // The chain fetch happened two seconds before the machine script.
    expect(trace.attempts[0].stages[0].at).toBe('2026-06-01T08:00:00.000Z');
  });

  it('serves installer artifacts with Content-Length, Range and ETag, and traces each fetch', async () => {
    const url = `/boot/installer/vmlinuz?attempt=${attemptId}`;
    const full = await t.controller.app.inject({ method: 'GET', url });
    expect(full.statusCode).toBe(200);
    expect(full.headers['content-length']).toBe(String(kernel.length));
    expect(Buffer.compare(full.rawPayload, kernel)).toBe(0);
    const etag = full.headers.etag as string;
    expect(etag).toBeTruthy();
    const part = await t.controller.app.inject({ method: 'GET', url, headers: { range: 'bytes=1000-1999' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${kernel.length}`);
    expect(Buffer.compare(part.rawPayload, kernel.subarray(1000, 2000))).toBe(0);
    const cached = await t.controller.app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
    expect(cached.statusCode).toBe(304);
    await t.controller.app.inject({ method: 'GET', url: `/boot/installer/initrd.img?attempt=${attemptId}` });
    const stages = (await t.api('GET', `/api/v1/machines/${runId ? (await t.api('GET', '/api/v1/machines?q=VM-SER-1')).json().items[0].id : ''}/trace`)).json().attempts[0].stages;
    expect(stages.map((x: any) => x.stage)).toEqual(['chain-script', 'machine-script', 'kernel', 'kernel', 'kernel', 'initrd']);
    expect(stages[3].detail).toEqual({ range: 'bytes=1000-1999' });
    expect((await t.controller.app.inject({ method: 'GET', url: '/boot/installer/passwd' })).statusCode).toBe(400);
  });

  let otherTicket = '';
  it('hands a second boot of the unclaimed run another ticket, and knows it is the same machine', async () => {
    clock.advance(1000);
    const s = await boot(ipxeQuery({ uuid: '6A4C1E52-0000-4000-8000-000000000001', mac: '52-54-00-B0-00-01' }));
    expect(runOf(s)).toBe(runId);
    otherTicket = tokenOf(s)!;
    expect(otherTicket).not.toBe(firstToken);
    expect((await t.api('GET', '/api/v1/machines?q=VM-SER')).json().items).toHaveLength(1);
  });

  it('refuses malformed or oversized facts and a token from another machine, storing nothing', async () => {
    const m = (await t.api('GET', '/api/v1/machines?q=VM-SER-1')).json().items[0];
    const hello = await agent(firstToken, '/agent/v1/hello', { agentVersion: '1.0' });
    expect(hello.statusCode, hello.body).toBe(200);
    expect(hello.json()).toMatchObject({ machine: { id: m.id, name: m.name }, run: { id: runId, kind: 'inspect' } });
    expect((await machine(m.id)).state).toBe('inspect-wait');
    // The first ticket claimed the run: the other one no longer works, and a boot gets none.
    expect((await agent(otherTicket, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(401);
    expect(tokenOf(await boot(ipxeQuery({ uuid: '6A4C1E52-0000-4000-8000-000000000001', mac: '52-54-00-B0-00-01' })))).toBeUndefined();
    const before = await snapshot(t.controller);
    const bad: [unknown, RegExp][] = [
      [{ ...makeFacts(), cpu: undefined }, /^cpu: is required$/],
      [{ ...makeFacts(), memory: { totalBytes: '2G', source: 'smbios' } }, /^memory\.totalBytes: must be integer$/],
      [{ ...makeFacts(), nics: [{ ...makeFacts().nics[0], mac: '52-54-00-B0-00-01' }] }, /^nics\[0\]\.mac: must match pattern/],
      [{ ...makeFacts(), hw: [['disk', 'vda', 'size']] }, /^hw\[0\]: must NOT have fewer than 4 items$/],
      [{ ...makeFacts(), extra: 1 }, /^extra: is not a known field$/],
    ];
    for (const [body, message] of bad) {
      const r = await agent(firstToken, '/agent/v1/facts', body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toMatch(message);
    }
    const huge = makeFacts();
    huge.hw = Array.from({ length: 49_000 }, (_, i) => ['x', `n${i}`, 'k', 'v'.repeat(400)]);
    expect((await agent(firstToken, '/agent/v1/facts', huge)).statusCode).toBe(413);
    expect(await snapshot(t.controller)).toBe(before);

    // Another machine boots; its facts are posted with the first machine's token.
    const s2 = await boot(ipxeQuery({ uuid: '6a4c1e52-0000-4000-8000-000000000002', serial: 'VM-SER-2', mac: '52:54:00:b0:00:02' }));
    const before2 = await snapshot(t.controller);
    const wrong = await agent(firstToken, '/agent/v1/facts', makeFacts({ uuid: '6a4c1e52-0000-4000-8000-000000000002', serial: 'VM-SER-2', macs: ['52:54:00:b0:00:02'] }));
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error.message).toMatch(/^these facts identify machine [a-z]+-[a-z]+-[0-9a-f]{4} \(by systemUuid\), not [a-z-0-9]+ whose run token was used$/);
    expect(await snapshot(t.controller)).toBe(before2);
    expect(tokenOf(s2)).not.toBe(firstToken);
  });

  it('stores log lines, then facts end the inspection: available, identity absorbed, token spent', async () => {
    const m = (await t.api('GET', '/api/v1/machines?q=VM-SER-1')).json().items[0];
    const log = await agent(firstToken, '/agent/v1/log', { lines: [{ line: 'plinth-installer: network up on ens3 10.0.2.15' }, { line: 'inspecting', stream: 'agent' }] });
    expect(log.json()).toEqual({ stored: 2 });
    const facts = makeFacts({ uuid: '6a4c1e52-0000-4000-8000-000000000001', serial: 'VM-SER-1', macs: ['52:54:00:b0:00:01', '52:54:00:b0:00:11'], disks: [['vda', 8 * 2 ** 30], ['vdb', 20 * 2 ** 30]] });
    const r = await agent(firstToken, '/agent/v1/facts', facts);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ next: 'poweroff' });
    const after = await machine(m.id);
    expect(after.state).toBe('available');
    expect(after.facts).toEqual(facts);
    expect(after.identity.macs).toEqual(['52:54:00:b0:00:01', '52:54:00:b0:00:11']);
    expect(after.lastStage).toBe('facts');
    const run = (await t.api('GET', `/api/v1/runs/${runId}`)).json();
    expect(run.status).toBe('succeeded');
    expect(run.steps.filter((s: any) => s.status === 'succeeded').map((s: any) => s.name)).toEqual(['power-on', 'boot-installer', 'agent-hello', 'report-facts', 'match-profile']);
    const lines = (await t.api('GET', `/api/v1/runs/${runId}/log`)).json().items.map((l: any) => l.line);
    expect(lines).toEqual(['plinth-installer: network up on ens3 10.0.2.15', 'inspecting']);
    // Replaying the token after the run ended.
    const replay = await agent(firstToken, '/agent/v1/facts', facts);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.message).toBe('run token is unknown, superseded, or its run has ended');
  });

  it('boots an inspected machine from its local disk, as the same machine', async () => {
    const count = (await t.api('GET', '/api/v1/machines')).json().items.length;
    const s = await boot(ipxeQuery({ mac: '52:54:00:b0:00:11' }));
    expect(s).toMatch(/\nexit\n$/);
    expect(s).toContain('booting from local disk');
    expect((await t.api('GET', '/api/v1/machines')).json().items.length).toBe(count);
    const m = (await t.api('GET', '/api/v1/machines?q=VM-SER-1')).json().items[0];
    const trace = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json();
    expect(trace.attempts.at(-1)).toMatchObject({ decision: 'local', bootMac: '52:54:00:b0:00:11' });
    expect(trace.attempts.at(-1).stages.map((x: any) => x.stage)).toEqual(['machine-script', 'local-boot']);
  });

  it('identifies machines whose SMBIOS is junk by their MAC', async () => {
    const junk = { uuid: '00000000-0000-0000-0000-000000000000', serial: 'To Be Filled By O.E.M.', asset: 'Default string', manufacturer: 'To Be Filled By O.E.M.' };
    await boot(ipxeQuery({ ...junk, mac: '52:54:00:c0:00:01' }));
    await boot(ipxeQuery({ ...junk, mac: '52:54:00:c0:00:02' }));
    await boot(ipxeQuery({ ...junk, mac: '52:54:00:c0:00:01' }));
    const one = (await t.api('GET', '/api/v1/machines?q=52:54:00:c0:00:01')).json().items;
    const two = (await t.api('GET', '/api/v1/machines?q=52:54:00:c0:00:02')).json().items;
    expect(one).toHaveLength(1);
    expect(two).toHaveLength(1);
    expect(one[0].id).not.toBe(two[0].id);
    expect(one[0].identity).toMatchObject({ systemUuid: null, serial: null, assetTag: null, manufacturer: null });
  });

  it('answers an unidentifiable request with a script, not an error, and records nothing', async () => {
    const before = await snapshot(t.controller);
    const s = await boot('/boot/machine.ipxe?uuid=&mac=zz:zz&serial=Default%20string');
    expect(s).toContain('could not be identified');
    expect(await boot('/boot/machine.ipxe')).toContain('could not be identified');
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('leaves machines in maintenance alone and says when the installer is missing', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'maint-1', maintenance: true, identity: { macs: ['52:54:00:d0:00:01'] } });
    const s = await boot(ipxeQuery({ mac: '52:54:00:d0:00:01' }));
    expect(s).toContain('booting from local disk');
    expect((await machine('maint-1')).state).toBe('enrolled');
    installerBuilt = false;
    try {
      const s2 = await boot(ipxeQuery({ mac: '52:54:00:d0:00:02' }));
      expect(s2).toContain('the installer is not built on the controller');
      expect(s2).toContain('chain --autofree http://10.0.2.2:7708/boot.ipxe');
      const m = (await t.api('GET', '/api/v1/machines?q=52:54:00:d0:00:02')).json().items[0];
      expect((await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json().attempts[0].decision).toBe('installer-missing');
    } finally {
      installerBuilt = true;
    }
  });

  it('fails an inspection whose agent never says hello, naming the stage it reached', async () => {
    const s = await boot(ipxeQuery({ serial: 'SILENT-1', mac: '52:54:00:e0:00:01' }));
    await t.controller.app.inject({ method: 'GET', url: `/boot/installer/vmlinuz?attempt=${attemptOf(s)}` });
    await t.controller.app.inject({ method: 'GET', url: `/boot/installer/initrd.img?attempt=${attemptOf(s)}` });
    clock.advance(11 * 60_000);
    await t.controller.sweeper.sweepOnce();
    const m = (await t.api('GET', '/api/v1/machines?q=SILENT-1')).json().items[0];
    expect(m.state).toBe('inspect-failed');
    expect(m.lastError).toMatchObject({ code: 'timeout', stage: 'initrd' });
    expect((await agent(tokenOf(s)!, '/agent/v1/hello', { agentVersion: 'late' })).statusCode).toBe(401);
  });
});

describe.each(backends)('a boot storm on $name', (backend) => {
  let t: TC;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-installer-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  beforeAll(async () => {
    // The storm is about the boot path, not the enrolment rate limit.
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708', enrolment: { burst: 100_000 } }, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
  });
  afterAll(async () => t?.close());

  const get = async (url: string) => {
    const r = await t.controller.app.inject({ method: 'GET', url, headers: { 'user-agent': 'iPXE/1.21.1+ (g988d2)' } });
    expect(r.statusCode).toBe(200);
    return r.body;
  };

  it('a thousand unknown machines at once, each asking twice (an iPXE retry), are each enrolled once, with one inspection and both boots traced', async () => {
    const n = 1000;
    const mac = (i: number) => `52:54:01:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const scripts = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        Promise.all(
          [0, 1].map(async () => {
            const nonce = /&chain=([A-Za-z0-9_-]+)&/.exec(await get('/boot.ipxe'))![1]!;
            return get(ipxeQuery({ serial: `STORM-${i}`, mac: mac(i), chain: nonce }));
          }),
        ),
      ),
    );
    // Both requests of a machine got the installer for the same run.
    for (const [a, b] of scripts) {
      expect(runOf(a!)).toBeDefined();
      expect(runOf(b!)).toBe(runOf(a!));
    }
    const db = t.controller.services.store.db;
    const machines = await db.selectFrom('machines').select(['id', 'serial', 'state', 'last_stage', 'current_run_id']).where('serial', 'like', 'STORM-%').execute();
    expect(machines).toHaveLength(n);
    expect(new Set(machines.map((m) => m.serial)).size).toBe(n);
    expect(machines.every((m) => m.state === 'inspecting' && m.last_stage === 'machine-script')).toBe(true);
    const runs = await db.selectFrom('runs').select(['machine_id', 'id']).where('machine_id', 'in', machines.map((m) => m.id)).execute();
    expect(runs).toHaveLength(n);
    expect(new Set(runs.map((r) => r.machine_id)).size).toBe(n);
    // Each boot is an attempt of its machine holding its chain fetch and its script, in that order.
    const stages = await db
      .selectFrom('boot_trace')
      .innerJoin('boot_attempts', 'boot_attempts.id', 'boot_trace.attempt_id')
      .select(['boot_attempts.machine_id as machineId', 'boot_trace.attempt_id as attemptId', 'boot_trace.stage as stage'])
      .where('boot_attempts.machine_id', 'in', machines.map((m) => m.id))
      .orderBy('boot_trace.id')
      .execute();
    const byAttempt = new Map<string, { machineId: string; stages: string[] }>();
    for (const s of stages) {
      const a = byAttempt.get(s.attemptId!) ?? { machineId: s.machineId, stages: [] };
      a.stages.push(s.stage);
      byAttempt.set(s.attemptId!, a);
    }
    expect(byAttempt.size).toBe(2 * n);
    expect([...byAttempt.values()].every((a) => a.stages.join() === 'chain-script,machine-script')).toBe(true);
    expect(await db.selectFrom('boot_chains').select('nonce').execute()).toHaveLength(0);
  });
});
