import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { FakeClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { CALLBACK_PLACEHOLDER } from '../../src/deploy/service.js';
import { startRedfishPeer } from '../support/peers/redfish-server.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const PUBLIC = 'http://10.0.2.2:7708';

/**
 * The boot side as an attacker on the provisioning network uses it: any request, any
 * identity, any Host header, against the real app and database. Each describe is one attack;
 * each must now fail to achieve what it did before.
 */
const installerDir = mkdtempSync(join(tmpdir(), 'plinth-installer-'));
writeFileSync(join(installerDir, 'vmlinuz'), 'kernel');
writeFileSync(join(installerDir, 'initrd.img'), 'initrd');
const installer = () => ({ kernel: join(installerDir, 'vmlinuz'), initrd: join(installerDir, 'initrd.img') });

const ticketIn = (script: string) => /plinth\.token=(\S+)/.exec(script)?.[1];

describe.each(backends)('boot security on $name', (backend) => {
  /** A controller for one describe, and the requests a machine (or an attacker) sends. */
  function harness(overrides: Record<string, unknown> = {}, clock = new FakeClock('2026-08-01T10:00:00.000Z'), logger?: ReturnType<typeof createLogger>) {
    const h = {
      t: undefined as unknown as TC,
      clock,
      async start() {
        h.t = await freshController(backend, { publicUrl: PUBLIC, ...overrides }, { clock, installer, ...(logger ? { logger } : {}) });
      },
      inject(method: string, url: string, o: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
        return h.t.controller.app.inject({
          method: method as 'GET',
          url,
          headers: { 'user-agent': 'iPXE/1.21.1', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.headers ?? {}) },
          ...(o.body !== undefined ? { payload: o.body as object } : {}),
        });
      },
      async boot(query: string) {
        return (await h.inject('GET', `/boot/machine.ipxe?${query}`)).body;
      },
      agent(token: string, path: string, body: unknown = {}) {
        return h.inject('POST', path, { token, body });
      },
      machine: async (key: string) => (await h.t.api('GET', `/api/v1/machines/${encodeURIComponent(key)}`)).json(),
      /** A machine that booted, said hello and reported: available, named `name`. */
      async inspected(name: string, mac: string, facts = makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] })) {
        const ticket = ticketIn(await h.boot(`mac=${mac}`))!;
        expect((await h.agent(ticket, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
        const r = await h.agent(ticket, '/agent/v1/facts', facts);
        expect(r.statusCode, r.body).toBe(200);
        const m = (await h.t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
        await h.t.api('PATCH', `/api/v1/machines/${m.id}`, { name });
        return h.machine(name);
      },
      async uploadImage(name: string, bytes: Buffer) {
        const up = await h.inject('POST', `/api/v1/images?name=${name}&sha256=${sha(bytes)}`, { token: h.t.adminToken, body: bytes, headers: { 'content-type': 'application/octet-stream' } });
        expect(up.statusCode, up.body).toBe(201);
      },
    };
    beforeAll(() => h.start());
    afterAll(async () => h.t?.close());
    return h;
  }

  describe('a boot request carrying only a MAC cannot take over a machine in a run', () => {
    const h = harness();
    let genuineTicket = '';

    it('gives no ticket once the genuine installer has claimed the run, and the genuine token keeps working', async () => {
      await h.inspected('victim', '52:54:00:a4:00:01');
      expect((await h.t.api('POST', '/api/v1/machines/victim/actions/wipe', { wipe: 'full' })).statusCode).toBe(200);
      const genuine = ticketIn(await h.boot('mac=52:54:00:a4:00:01'))!;
      // An attacker who boots with the MAC before the genuine agent's hello holds a ticket of the same epoch.
      const early = ticketIn(await h.boot('mac=52:54:00:a4:00:01'))!;
      expect(early).toBeTruthy();
      expect((await h.agent(genuine, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);

      // After the claim: a boot request with the MAC gets a waiting script, no ticket.
      const later = await h.boot('mac=52:54:00:a4:00:01');
      expect(ticketIn(later)).toBeUndefined();
      expect(later).toContain('its run is already held by the installer that claimed it');
      expect(later).toContain('sleep 60');
      // Neither the early ticket, nor a forged one, nor a ticket for another run works.
      const runId = (await h.machine('victim')).currentRunId as string;
      const forged = `plrun_${runId}.0.${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
      for (const bad of [early, forged, `plrun_${randomBytes(32).toString('base64url')}`]) {
        const r = await h.agent(bad, '/agent/v1/steps/erase', { status: 'succeeded', message: 'nothing erased' });
        expect(r.statusCode, r.body).toBe(401);
      }
      expect((await h.machine('victim')).state).toBe('wipe-wait');
      // The genuine agent was not unseated by any of it.
      const step = await h.agent(genuine, '/agent/v1/steps/erase', { status: 'running' });
      expect(step.statusCode, step.body).toBe(200);
      genuineTicket = genuine;
    });

    it('re-arms only when the controller itself restarts the machine: a new epoch, the old token dead', async () => {
      const peer = await startRedfishPeer({ username: 'u', password: 'p', powerState: 'On' });
      h.t.controller.power.start();
      try {
        const a = await h.t.api('POST', '/api/v1/appliances', { name: 'bmc', type: 'redfish', address: peer.url, username: 'u', password: 'p' });
        expect(a.statusCode, a.body).toBe(201);
        const linked = await h.t.api('PATCH', '/api/v1/machines/victim', { provider: { applianceId: a.json().id, ref: peer.systemPath } });
        expect(linked.statusCode, linked.body).toBe(200);
        const held = (await h.machine('victim')).currentRunId as string;
        expect(ticketIn(await h.boot('mac=52:54:00:a4:00:01'))).toBeUndefined();
        expect((await h.agent(genuineTicket, '/agent/v1/heartbeat', {})).statusCode).toBe(200);

        const cycle = await h.t.api('POST', '/api/v1/machines/victim/power', { action: 'cycle' });
        expect(cycle.statusCode, cycle.body).toBe(200);
        expect((await h.agent(genuineTicket, '/agent/v1/heartbeat', {})).statusCode).toBe(401);
        const fresh = ticketIn(await h.boot('mac=52:54:00:a4:00:01'))!;
        expect(fresh).toMatch(new RegExp(`^plrun_${held}\\.1\\.`));
        expect((await h.agent(fresh, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
        const done = await h.agent(fresh, '/agent/v1/steps/erase', { status: 'succeeded', message: 'vda: full' });
        expect(done.json()).toEqual({ next: 'poweroff' });
        expect((await h.machine('victim')).state).toBe('available');
      } finally {
        await h.t.controller.power.stop();
        await h.t.api('PATCH', '/api/v1/machines/victim', { provider: { applianceId: null, ref: null } });
        await peer.close();
      }
    });

    it('an operator retry is a new run: the failed run\'s token is dead, the new one is claimable', async () => {
      const ticket = ticketIn(await h.boot(`mac=52:54:00:a4:00:01`));
      expect(ticket).toBeUndefined(); // available: local boot
      expect((await h.t.api('POST', '/api/v1/machines/victim/actions/wipe', { wipe: 'quick' })).statusCode).toBe(200);
      const first = ticketIn(await h.boot('mac=52:54:00:a4:00:01'))!;
      expect((await h.agent(first, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
      expect((await h.agent(first, '/agent/v1/fail', { code: 'agent', message: 'boom' })).statusCode).toBe(200);
      expect((await h.t.api('POST', '/api/v1/machines/victim/actions/retry', {})).statusCode).toBe(200);
      expect((await h.agent(first, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(401);
      const second = ticketIn(await h.boot('mac=52:54:00:a4:00:01'))!;
      expect((await h.agent(second, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
    });
  });

  describe('the Host header of a boot request never becomes a URL the controller hands out', () => {
    const h = harness({ publicUrl: '' });
    let base = '';
    beforeAll(async () => {
      base = await h.t.controller.listen();
    });
    /** A boot request over a real socket, with the Host header an attacker chooses. */
    const get = (path: string, host: string) =>
      new Promise<string>((resolve, reject) => {
        const u = new URL(base + path);
        const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { host, 'user-agent': 'iPXE/1.21.1' } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });

    it('answers with the controller\'s own address, and a later deploy\'s seeds point there too', async () => {
      const chain = await get('/boot.ipxe', 'evil.example:7708');
      expect(chain).not.toContain('evil.example');
      expect(chain).toContain(`set plinth-base ${base}`);
      const script = await get('/boot/machine.ipxe?mac=52:54:00:a2:00:01', 'evil.example:7708');
      expect(script).not.toContain('evil.example');
      expect(script).toContain(`plinth.url=${base} `);
      const ticket = ticketIn(script)!;
      expect((await h.agent(ticket, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
      expect((await h.agent(ticket, '/agent/v1/facts', makeFacts({ serial: 'SER-host', macs: ['52:54:00:a2:00:01'] }))).statusCode).toBe(200);
      const m = (await h.t.api('GET', '/api/v1/machines?q=52:54:00:a2:00:01')).json().items[0];
      const r = await h.t.api('POST', `/api/v1/machines/${m.id}/actions/deploy`, { method: 'preseed' });
      expect(r.statusCode, r.body).toBe(200);
      const ipxe = (await h.t.api('GET', `/api/v1/runs/${r.json().run.id}/artifacts/ipxe%2Fdebian-installer`)).body;
      expect(ipxe).not.toContain('evil.example');
      expect(ipxe).toContain(`${base}/boot/artifacts/`);
    });
  });

  describe('a reader cannot complete a deploy with a callback secret read from its artifacts', () => {
    const h = harness();

    it('shows readers a placeholder; every run, a reused one too, has its own secret, and the last one dies', async () => {
      await h.uploadImage('tiny', randomBytes(2 ** 20));
      await h.inspected('web', '52:54:00:a9:00:01');
      const reader = (await h.t.api('POST', '/api/v1/tokens', { name: 'ro', role: 'reader' })).json().token;
      const first = (await h.t.api('POST', '/api/v1/machines/web/actions/deploy', { image: 'tiny' })).json().run.id;
      const seen = (await h.t.api('GET', `/api/v1/runs/${first}/artifacts/cloud-init%2Fuser-data`, undefined, reader)).body;
      expect(seen).toContain(CALLBACK_PLACEHOLDER);
      expect(seen.replaceAll(CALLBACK_PLACEHOLDER, '')).not.toMatch(/plcb_/);
      expect((await h.agent(CALLBACK_PLACEHOLDER, '/agent/v1/installed', { event: 'first-boot' })).statusCode).toBe(401);
      expect((await h.machine('web')).state).toBe('deploying');

      // The genuine machine gets the secret in its agent's hello and reports in with it.
      const ticket = ticketIn(await h.boot('mac=52:54:00:a9:00:01'))!;
      const hello = (await h.agent(ticket, '/agent/v1/hello', { agentVersion: 't' })).json();
      const secret1 = /plcb_[A-Za-z0-9_-]+/.exec(hello.run.params.seed.userData)![0];
      expect((await h.agent(secret1, '/agent/v1/installed', { event: 'first-boot' })).statusCode).toBe(200);

      // A redeploy reusing the run: the same stored bytes, a new secret; the old one is dead.
      const again = (await h.t.api('POST', '/api/v1/machines/web/actions/redeploy', { reuseRun: first })).json().run.id;
      const a = (await h.t.api('GET', `/api/v1/runs/${first}/artifacts`)).json().items.map((x: any) => x.sha256);
      const b = (await h.t.api('GET', `/api/v1/runs/${again}/artifacts`)).json().items.map((x: any) => x.sha256);
      expect(b).toEqual(a);
      expect((await h.agent(secret1, '/agent/v1/installed', { event: 'first-boot' })).statusCode).toBe(401);
      const hello2 = (await h.agent(ticketIn(await h.boot('mac=52:54:00:a9:00:01'))!, '/agent/v1/hello', { agentVersion: 't' })).json();
      const secret2 = /plcb_[A-Za-z0-9_-]+/.exec(hello2.run.params.seed.userData)![0];
      expect(secret2).not.toBe(secret1);
      expect((await h.agent(secret2, '/agent/v1/installed', { event: 'first-boot' })).statusCode).toBe(200);
    });
  });

  describe('one run token cannot fill the database through the agent log', () => {
    const h = harness({ agent: { logLimit: 65536 } });

    it('answers 413 once the run has logged agent.logLimit bytes, and stores nothing more', async () => {
      await h.t.api('POST', '/api/v1/machines', { name: 'chatty', identity: { macs: ['52:54:00:a8:00:01'] } });
      await h.t.api('POST', '/api/v1/machines/chatty/actions/inspect', {});
      const ticket = ticketIn(await h.boot('mac=52:54:00:a8:00:01'))!;
      const batch = { lines: Array.from({ length: 10 }, () => ({ line: 'x'.repeat(1000) })) };
      for (let i = 0; i < 6; i++) expect((await h.agent(ticket, '/agent/v1/log', batch)).statusCode).toBe(200);
      const over = await h.agent(ticket, '/agent/v1/log', batch);
      expect(over.statusCode, over.body).toBe(413);
      expect(over.json().error.message).toMatch(/agent\.logLimit/);
      const runId = (await h.machine('chatty')).currentRunId;
      const rows = await h.t.controller.services.store.db.selectFrom('run_logs').select((eb) => eb.fn.countAll().as('n')).where('run_id', '=', runId).executeTakeFirstOrThrow();
      expect(Number(rows.n)).toBe(60);
      // Step messages count against the same budget: 60,300 bytes stored, room for one more of these.
      expect((await h.agent(ticket, '/agent/v1/steps/x', { status: 'running', message: 'y'.repeat(4096) })).statusCode).toBe(200);
      expect((await h.agent(ticket, '/agent/v1/steps/x', { status: 'running', message: 'y'.repeat(4096) })).statusCode).toBe(413);
    });
  });

  describe('an unauthenticated client cannot make the controller read a large body', () => {
    const h = harness();

    it('answers 401 before parsing: malformed and oversized bodies alike', async () => {
      const before = await snapshot(h.t.controller);
      const huge = Buffer.alloc(17 * 2 ** 20, 0x20);
      for (const payload of ['{not json', huge]) {
        for (const path of ['/agent/v1/facts', '/agent/v1/log', '/agent/v1/installed']) {
          const r = await h.t.controller.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', authorization: 'Bearer plrun_nope' }, payload });
          expect(r.statusCode, `${path}: ${r.body.slice(0, 200)}`).toBe(401);
        }
      }
      expect(await snapshot(h.t.controller)).toBe(before);
    });
  });

  describe('boot requests cannot flood the inventory', () => {
    const h = harness({ enrolment: { burst: 3, ratePerSecond: 1 } });

    it('enrols unknown machines at the configured rate, and refuses the rest with a script that says why', async () => {
      for (let i = 0; i < 3; i++) expect(ticketIn(await h.boot(`mac=52:54:00:ab:00:0${i}`))).toBeTruthy();
      const refused = await h.boot('mac=52:54:00:ab:00:09');
      expect(refused).toContain('too many unknown machines are enrolling at once (enrolment.ratePerSecond)');
      expect((await h.t.api('GET', '/api/v1/machines')).json().items).toHaveLength(3);
      h.clock.advance(1000);
      expect(ticketIn(await h.boot('mac=52:54:00:ab:00:09'))).toBeTruthy();
    });

    it('adds no identity, conflict or event to a known machine from a boot request', async () => {
      const m = (await h.t.api('GET', '/api/v1/machines?q=52:54:00:ab:00:00')).json().items[0];
      const other = (await h.t.api('GET', '/api/v1/machines?q=52:54:00:ab:00:01')).json().items[0];
      const events = async () => (await h.t.api('GET', `/api/v1/machines/${m.id}/events`)).json().items.length;
      const n = await events();
      for (let i = 0; i < 20; i++) await h.boot(`mac=52:54:00:ab:00:00&mac1=02:00:00:00:00:${i.toString(16).padStart(2, '0')}&mac2=52:54:00:ab:00:01`);
      const after = await h.machine(m.id);
      expect(after.identity.macs).toEqual(['52:54:00:ab:00:00']);
      expect(after.identityConflicts).toEqual([]);
      expect(await events()).toBe(n);
      expect((await h.machine(other.id)).identity.macs).toEqual(['52:54:00:ab:00:01']);
    });
  });

  describe('identity conflicts cannot grow without bound', () => {
    const h = harness();

    it('keeps one record per field, kind and other machine, and at most 32 per machine', async () => {
      const { inventory, store } = h.t.controller.services;
      await h.t.api('POST', '/api/v1/machines', { name: 'target', identity: { macs: ['52:54:00:ad:00:01'] } });
      const m = await inventory.get('target');
      const report = (n: number, field: string) =>
        Array.from({ length: n }, (_, i) => ({ field, kind: 'mismatch', reported: `value-${i}`, recorded: 'x', machineId: m.id }) as (typeof m.identityConflicts)[number]);
      const record = async (conflicts: typeof m.identityConflicts) => {
        const current = await inventory.get('target');
        await store.transaction((trx) => inventory.recordConflicts(trx, current, conflicts, { kind: 'system', name: 'test' }));
      };
      await record(report(50, 'serial'));
      await record(report(50, 'serial'));
      expect((await inventory.get('target')).identityConflicts).toHaveLength(1);
      for (let i = 0; i < 40; i++) {
        await record([{ field: 'systemUuid', kind: 'other-machine', reported: `uuid-${i}`, machineId: `other-${i}` } as (typeof m.identityConflicts)[number]]);
      }
      expect((await inventory.get('target')).identityConflicts).toHaveLength(32);
      const events = (await h.t.api('GET', '/api/v1/machines/target/events?limit=100')).json().items.filter((e: any) => e.action === 'identity-conflict');
      expect(events).toHaveLength(32);
    });
  });

  describe('enrolment switched off', () => {
    const h = harness({ enrolment: { enabled: false } });

    it('tells an unknown machine it is not enrolled and creates nothing', async () => {
      const before = await snapshot(h.t.controller);
      const s = await h.boot('mac=52:54:00:ac:00:01&serial=NEW');
      expect(s).toContain('enrolment.enabled is false');
      expect(s).toMatch(/\nexit\n$/);
      expect(await snapshot(h.t.controller)).toBe(before);
    });
  });

  describe('the agent cannot move its deadline wherever it likes', () => {
    const h = harness();

    it('bounds a progress report to the state\'s own timeout and refuses inconsistent numbers with 400', async () => {
      const image = randomBytes(2 ** 20);
      await h.uploadImage('tiny', image);
      await h.inspected('slow', '52:54:00:a5:00:01');
      await h.t.api('POST', '/api/v1/machines/slow/actions/deploy', { image: 'tiny' });
      const ticket = ticketIn(await h.boot('mac=52:54:00:a5:00:01'))!;
      expect((await h.agent(ticket, '/agent/v1/hello', { agentVersion: 't' })).statusCode).toBe(200);
      const hello = (await h.machine('slow')).stateDeadline;
      expect(hello).toBe('2026-08-01T11:00:00.000Z');
      const beat = (progress: unknown) => h.agent(ticket, '/agent/v1/heartbeat', { step: 'write-image', progress });
      // One byte a second would take weeks: the deadline stays within deploy-wait from now.
      expect((await beat({ bytesWritten: 0, totalBytes: image.length, bytesPerSecond: 1e-9 })).statusCode).toBe(200);
      expect((await h.machine('slow')).stateDeadline).toBe('2026-08-01T11:00:00.000Z');
      const bad: [unknown, RegExp][] = [
        [{ bytesWritten: 10, totalBytes: 5, bytesPerSecond: 1 }, /^progress\.bytesWritten: /],
        [{ bytesWritten: 0, totalBytes: 8e15, bytesPerSecond: 1 }, /^progress\.totalBytes: /],
        [{ bytesWritten: 0, totalBytes: image.length, bytesPerSecond: 1e300 }, /^progress\.bytesPerSecond: /],
        [{ bytesWritten: 1e300, totalBytes: 1e300, bytesPerSecond: 1 }, /^progress\.bytesWritten: /],
      ];
      for (const [progress, message] of bad) {
        const r = await beat(progress);
        expect(r.statusCode, r.body).toBe(400);
        expect(r.json().error.message).toMatch(message);
      }
      expect((await h.machine('slow')).stateDeadline).toBe('2026-08-01T11:00:00.000Z');
    });
  });

  describe('secrets stay out of logs, boot parameters are bounded, the ssh hint is an address', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const h = harness({}, undefined, createLogger('info', sink));

    it('redacts run tickets and callback secrets in the request log and in stored agent log lines', async () => {
      await h.t.api('POST', '/api/v1/machines', { name: 'logged', identity: { macs: ['52:54:00:a7:00:01'] } });
      await h.t.api('POST', '/api/v1/machines/logged/actions/inspect', {});
      const ticket = ticketIn(await h.boot('mac=52:54:00:a7:00:01'))!;
      await h.inject('GET', '/boot/artifacts/plcb_SECRETsecretSECRETsecret/preseed/preseed.cfg');
      await h.inject('GET', `/boot/installer/vmlinuz?attempt=x&t=${ticket}`);
      await h.agent(ticket, '/agent/v1/log', { lines: [{ line: `cmdline: plinth.token=${ticket} quiet` }] });
      const log = lines.join('');
      expect(log).toContain('/boot/artifacts/plcb_[redacted]/');
      expect(log).not.toContain('SECRETsecret');
      expect(log).not.toContain(ticket.slice(6));
      const runId = (await h.machine('logged')).currentRunId;
      const stored = (await h.t.api('GET', `/api/v1/runs/${runId}/log`)).json().items.map((l: any) => l.line);
      expect(stored).toEqual(['cmdline: plinth.token=plrun_[redacted] quiet']);
    });

    it('refuses over-long, unknown or control-character boot parameters with 400 naming the field, writing nothing', async () => {
      const before = await snapshot(h.t.controller);
      for (const [query, field] of [
        [`mac=52:54:00:a7:00:09&serial=${'S'.repeat(5000)}`, 'serial'],
        ['mac=52:54:00:a7:00:09&evil=1', 'evil'],
        ['mac=52:54:00:a7:00:09&serial=%1b%5b31mred', 'serial'],
      ] as const) {
        const r = await h.inject('GET', `/boot/machine.ipxe?${query}`);
        expect(r.statusCode).toBe(400);
        expect(r.body).toMatch(/^#!ipxe\n/);
        expect(r.body).toContain(`boot parameter ${field} `);
      }
      expect(await snapshot(h.t.controller)).toBe(before);
    });

    it('records the deployed address without its prefix length', async () => {
      const facts = makeFacts({ serial: 'SER-cidr', macs: ['52:54:00:a7:00:02'] });
      // Addresses in CIDR form come from profile variables (a pool's entries); facts carry plain addresses.
      const applied = await h.t.api('POST', '/api/v1/profiles/apply', {
        pools: [{ name: 'cidr', entries: [{ ip: '10.0.2.15/24' }] }],
        profiles: [{ name: 'cidr', spec: [['system', 'product', 'serial', 'SER-cidr']], pool: 'cidr' }],
      });
      expect(applied.statusCode, applied.body).toBe(200);
      await h.uploadImage('tiny', randomBytes(2 ** 20));
      await h.inspected('cidr', '52:54:00:a7:00:02', facts);
      await h.t.api('POST', '/api/v1/machines/cidr/actions/deploy', { image: 'tiny' });
      const hello = (await h.agent(ticketIn(await h.boot('mac=52:54:00:a7:00:02'))!, '/agent/v1/hello', { agentVersion: 't' })).json();
      const secret = /plcb_[A-Za-z0-9_-]+/.exec(hello.run.params.seed.userData)![0];
      expect((await h.agent(secret, '/agent/v1/installed', { event: 'first-boot' })).statusCode).toBe(200);
      expect((await h.machine('cidr')).deployment.address).toBe('10.0.2.15');
    });
  });
});
