import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';

type TC = Awaited<ReturnType<typeof freshController>>;

describe.each(backends)('machines API on $name', (backend) => {
  let t: TC;
  beforeAll(async () => {
    t = await freshController(backend);
  });
  afterAll(async () => t?.close());

  /** Sends a request that must be rejected and proves it changed nothing. */
  async function rejected(method: string, path: string, body: unknown, status: number, message: RegExp, token?: string | null) {
    const before = await snapshot(t.controller);
    const res = await t.api(method, path, body, token);
    expect(res.statusCode, res.body).toBe(status);
    const err = res.json().error;
    expect(Object.keys(res.json())).toEqual(['error']);
    expect(typeof err.code).toBe('string');
    expect(err.message).toMatch(message);
    expect(await snapshot(t.controller)).toBe(before);
    return err;
  }

  it('creates a machine and reads it back by id and by name', async () => {
    const res = await t.api('POST', '/api/v1/machines', {
      name: 'rack1-node01',
      identity: { systemUuid: 'A1B2C3D4-0000-1111-2222-333344445555', serial: 'CZJ31402CD', manufacturer: 'HP', macs: ['52-54-00-AA-00-01'] },
      tags: { rack: 'r1', role: 'compute' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const m = res.json();
    expect(m.name).toBe('rack1-node01');
    expect(m.state).toBe('enrolled');
    expect(m.identity).toEqual({
      systemUuid: 'a1b2c3d4-0000-1111-2222-333344445555',
      serial: 'CZJ31402CD',
      manufacturer: 'HP',
      productName: null,
      assetTag: null,
      macs: ['52:54:00:aa:00:01'],
    });
    expect(m.tags).toEqual({ rack: 'r1', role: 'compute' });
    expect(m.allowedActions.sort()).toEqual(['boot-installer', 'inspect', 'retire', 'wipe']);
    const byId = await t.api('GET', `/api/v1/machines/${m.id}`);
    const byName = await t.api('GET', '/api/v1/machines/rack1-node01');
    expect(byId.json()).toEqual(byName.json());
    expect(byId.json().id).toBe(m.id);
    const events = (await t.api('GET', '/api/v1/machines/rack1-node01/events')).json();
    expect(events.items.map((e: any) => [e.action, e.fromState, e.toState, e.actor])).toEqual([['enroll', null, 'enrolled', 'operator:admin']]);
  });

  it('generates a readable unique name when none is given', async () => {
    const names = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await t.api('POST', '/api/v1/machines', { tags: { batch: 'gen' } });
      expect(r.statusCode).toBe(201);
      expect(r.json().name).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
      names.add(r.json().name);
    }
    expect(names.size).toBe(5);
  });

  it('rejects unknown fields, wrong types and bad values, naming the field, changing nothing', async () => {
    await rejected('POST', '/api/v1/machines', { name: 'x1', colour: 'red' }, 400, /^colour: is not a known field/);
    await rejected('POST', '/api/v1/machines', { name: 42 }, 400, /^name: must be string/);
    await rejected('POST', '/api/v1/machines', { name: 'Bad_Name' }, 400, /^name: must match pattern/);
    await rejected('POST', '/api/v1/machines', { name: 'x2', identity: { macs: ['52:54:00:aa:00:09', 'zz:zz'] } }, 400, /^identity\.macs\[1\]: 'zz:zz' is not a MAC address/);
    await rejected('POST', '/api/v1/machines', { name: 'x3', identity: { systemUuid: '00000000-0000-0000-0000-000000000000' } }, 400, /^identity\.systemUuid: .*placeholder/);
    await rejected('POST', '/api/v1/machines', { name: 'x4', identity: { serial: 'To Be Filled By O.E.M.' } }, 400, /^identity\.serial: .*placeholder/);
    await rejected('POST', '/api/v1/machines', { name: 'x5', tags: { rack: 7 } }, 400, /^tags\.rack: must be string/);
    await rejected('POST', '/api/v1/machines', { name: 'x6', maintenance: 'yes' }, 400, /^maintenance: must be boolean/);
    await rejected('POST', '/api/v1/machines', '[1,2', 400, /JSON/);
    await rejected('GET', '/api/v1/machines?limit=0', undefined, 400, /^limit: must be >= 1/);
    await rejected('GET', '/api/v1/machines?state=flying', undefined, 400, /^state\[0\]: must be one of/);
    await rejected('GET', '/api/v1/machines?cursor=bogus', undefined, 400, /^cursor: /);
    await rejected('PATCH', '/api/v1/machines/rack1-node01', {}, 400, /must not be empty/);
    // Only Plinth's own DHCP server (dhcp.mode full) hands out fixed addresses; it is off here.
    await rejected('PATCH', '/api/v1/machines/rack1-node01', { bootAddress: '10.0.0.5' }, 400, /^bootAddress: .*dhcp\.mode full/);
    await rejected('PATCH', '/api/v1/machines/rack1-node01', { bootAddress: 'not-an-address' }, 400, /^bootAddress: 'not-an-address' is not an IPv4 address/);
  });

  it('rejects oversize bodies with 413', async () => {
    const huge = { name: 'big', tags: Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, 'v'.repeat(60)])) };
    const err = await rejected('POST', '/api/v1/machines', huge, 413, /larger than the limit/);
    expect(err.code).toBe('payload_too_large');
  });

  it('rejects duplicate names and identities with 409 naming the field and the owner', async () => {
    await rejected('POST', '/api/v1/machines', { name: 'rack1-node01' }, 409, /^name 'rack1-node01' is already in use/);
    await rejected('POST', '/api/v1/machines', { name: 'dup1', identity: { systemUuid: 'a1b2c3d4-0000-1111-2222-333344445555' } }, 409, /identity\.systemUuid .* already in use \(already used by rack1-node01\)/);
    await rejected('POST', '/api/v1/machines', { name: 'dup2', identity: { serial: 'CZJ31402CD', manufacturer: 'HP' } }, 409, /identity\.serial/);
    await rejected('POST', '/api/v1/machines', { name: 'dup3', identity: { macs: ['52:54:00:AA:00:01'] } }, 409, /identity\.macs '52:54:00:aa:00:01'/);
    // Same serial from another manufacturer is a different machine.
    const ok = await t.api('POST', '/api/v1/machines', { name: 'other-maker', identity: { serial: 'CZJ31402CD', manufacturer: 'Dell Inc.' } });
    expect(ok.statusCode, ok.body).toBe(201);
    const other = await t.api('POST', '/api/v1/machines', { name: 'renamer' });
    await rejected('PATCH', '/api/v1/machines/renamer', { name: 'rack1-node01' }, 409, /^name 'rack1-node01'/);
    await rejected('PATCH', `/api/v1/machines/${other.json().id}`, { identity: { macs: ['52:54:00:aa:00:01'] } }, 409, /identity\.macs/);
  });

  it('enrolls a list in one request, each as a single enrolment would, with its own enroll event', async () => {
    const after = (await t.api('GET', '/api/v1/events?limit=1000')).json().next;
    const res = await t.api('POST', '/api/v1/machines/bulk', {
      machines: [
        { name: 'bulk-a', identity: { serial: 'BULK0001', manufacturer: 'HP', macs: ['52-54-00-BB-00-01'] }, tags: { rack: 'r9' } },
        { identity: { macs: ['52:54:00:bb:00:02'] }, owner: 'team-bulk' },
        { name: 'bulk-c', maintenance: true, maintenanceReason: 'burn-in' },
      ],
    });
    expect(res.statusCode, res.body).toBe(201);
    const ms = res.json().machines;
    expect(ms.map((m: any) => [m.state, m.identity.macs, m.owner, m.maintenance])).toEqual([
      ['enrolled', ['52:54:00:bb:00:01'], null, false],
      ['enrolled', ['52:54:00:bb:00:02'], 'team-bulk', false],
      ['enrolled', [], null, true],
    ]);
    expect(ms[0].name).toBe('bulk-a');
    expect(ms[1].name).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
    expect((await t.api('GET', '/api/v1/machines/bulk-a')).json()).toEqual(ms[0]);
    const events = (await t.api('GET', `/api/v1/events?after=${after}&type=machine.`)).json().items;
    expect(events.map((e: any) => [e.action, e.machineId, e.actor])).toEqual(ms.map((m: any) => ['enroll', m.id, 'operator:admin']));
  });

  it('refuses a bad list as a whole, naming the entry and its field, writing none of it', async () => {
    const good = { name: 'bulk-ok', identity: { macs: ['52:54:00:bb:00:10'] } };
    const bulk = (...machines: unknown[]) => ({ machines });
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { name: 'Bad_Name' }), 400, /^machines\[1\]\.name: must match pattern/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, good, { name: 'x', colour: 'red' }), 400, /^machines\[2\]\.colour: is not a known field/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { identity: { macs: ['52:54:00:bb:00:11', 'zz:zz'] } }), 400, /^machines\[1\]\.identity\.macs\[1\]: 'zz:zz' is not a MAC address/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { identity: { serial: 'To Be Filled By O.E.M.' } }), 400, /^machines\[1\]\.identity\.serial: .*placeholder/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { bootAddress: '10.0.0.5' }), 400, /^machines\[1\]\.bootAddress: .*dhcp\.mode full/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(), 400, /^machines: must NOT have fewer than 1 items/);
    await rejected('POST', '/api/v1/machines/bulk', { machines: Array.from({ length: 1001 }, () => ({})) }, 400, /^machines: must NOT have more than 1000 items/);
    await rejected('POST', '/api/v1/machines/bulk', [good], 400, /must be object/);
    // Taken by a machine enrolled before, or by an earlier entry of the same list: 409, as for one.
    const err = await rejected('POST', '/api/v1/machines/bulk', bulk(good, { name: 'bulk-d', identity: { macs: ['52:54:00:BB:00:01'] } }), 409, /^machines\[1\]\.identity\.macs '52:54:00:bb:00:01' is already in use \(already used by bulk-a\)/);
    expect(err.details).toMatchObject({ field: 'machines[1].identity.macs', index: 1, existing: 'bulk-a' });
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { name: 'bulk-e' }, { name: 'bulk-f', identity: { macs: ['52:54:00:bb:00:10'] } }), 409, /^machines\[2\]\.identity\.macs .*already used by bulk-ok/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { name: 'bulk-ok' }), 409, /^machines\[1\]\.name 'bulk-ok' is already in use/);
    await rejected('POST', '/api/v1/machines/bulk', bulk(good, { name: 'bulk-g', identity: { serial: 'BULK0001', manufacturer: 'HP' } }), 409, /^machines\[1\]\.identity\.serial/);
    expect((await t.api('GET', '/api/v1/machines/bulk-ok')).statusCode).toBe(404);
  });

  it('enrolls a rack of 250 in a few statements, each machine and event as one enrolment makes them', async () => {
    const after = (await t.api('GET', '/api/v1/events?limit=1000')).json().next;
    const hex = (i: number) => i.toString(16).padStart(4, '0');
    const rack = Array.from({ length: 250 }, (_, i) => ({
      ...(i % 5 === 0 ? {} : { name: `rack7-${hex(i)}` }),
      identity: { systemUuid: `0000${hex(i)}-1111-2222-3333-444455556666`, serial: `R7S${hex(i)}`, assetTag: `R7A${hex(i)}`, manufacturer: 'Dell', macs: [`52:54:00:c7:${hex(i).slice(0, 2)}:${hex(i).slice(2)}`] },
      tags: { rack: 'r7', u: String(i % 42) },
    }));
    const res = await t.api('POST', '/api/v1/machines/bulk', { machines: rack });
    expect(res.statusCode, res.body).toBe(201);
    const ms = res.json().machines;
    expect(ms).toHaveLength(250);
    expect(ms.map((m: any) => [m.identity.serial, m.identity.macs, m.tags, m.state])).toEqual(rack.map((r) => [r.identity.serial, r.identity.macs, r.tags, 'enrolled']));
    expect(ms[0].name).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
    for (const i of [0, 1, 199, 200, 249]) expect((await t.api('GET', `/api/v1/machines/${ms[i].name}`)).json()).toEqual(ms[i]);
    // Found by search as any machine is (serial substring, exact MAC).
    expect((await t.api('GET', '/api/v1/machines?q=R7S00f')).json().items.map((m: any) => m.name).sort()).toEqual(ms.slice(240, 250).map((m: any) => m.name).sort());
    expect((await t.api('GET', '/api/v1/machines?q=52:54:00:c7:00:c8')).json().items.map((m: any) => m.name)).toEqual([ms[200].name]);
    const events = (await t.api('GET', `/api/v1/events?after=${after}&type=machine.&limit=1000`)).json().items;
    expect(events.map((e: any) => [e.action, e.machineId, e.toState])).toEqual(ms.map((m: any) => ['enroll', m.id, 'enrolled']));
    // Now taken, each identifier refuses the next list at its entry, whichever path finds it.
    await rejected('POST', '/api/v1/machines/bulk', { machines: [{ name: 'late-1' }, { name: 'late-2', identity: { systemUuid: rack[130]!.identity.systemUuid } }] }, 409, /^machines\[1\]\.identity\.systemUuid/);
    await rejected('POST', '/api/v1/machines/bulk', { machines: [{ name: 'late-1' }, { name: 'late-2', identity: { assetTag: 'R7A0082' } }] }, 409, /^machines\[1\]\.identity\.assetTag/);
  });

  it('decides a list whose entries repeat an identifier one by one: the same serial of two makers is two machines, of one maker a 409', async () => {
    const ok = await t.api('POST', '/api/v1/machines/bulk', { machines: [{ name: 'twin-a', identity: { serial: 'TWIN1', manufacturer: 'HP' } }, { name: 'twin-b', identity: { serial: 'TWIN1', manufacturer: 'Dell' } }] });
    expect(ok.statusCode, ok.body).toBe(201);
    await rejected('POST', '/api/v1/machines/bulk', { machines: [{ name: 'twin-c', identity: { serial: 'TWIN2', manufacturer: 'HP' } }, { name: 'twin-d', identity: { serial: 'TWIN2', manufacturer: 'HP' } }] }, 409, /^machines\[1\]\.identity\.serial/);
    await rejected('POST', '/api/v1/machines/bulk', { machines: [{ name: 'twin-e', identity: { macs: ['52:54:00:c8:00:01'] } }, { name: 'twin-e' }] }, 409, /^machines\[1\]\.name 'twin-e'/);
    await rejected('POST', '/api/v1/machines/bulk', { machines: [{ name: 'twin-f' }, { name: 'twin-g', provider: { applianceId: '00000000-0000-4000-8000-000000000000', ref: 'x' } }] }, 400, /^machines\[1\]\.provider\.applianceId/);
  });

  it('gives two lists racing for one MAC one 201 and one 409 naming the entry', async () => {
    const list = (prefix: string) => Array.from({ length: 100 }, (_, i) => ({ name: `${prefix}-${i}`, identity: { macs: [i === 57 ? '52:54:00:c9:00:57' : `52:54:00:c9:${prefix === 'q7ra' ? '01' : '02'}:${i.toString(16).padStart(2, '0')}`] } }));
    const [a, b] = await Promise.all([t.api('POST', '/api/v1/machines/bulk', { machines: list('q7ra') }), t.api('POST', '/api/v1/machines/bulk', { machines: list('q7rb') })]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 409]);
    const lost = a.statusCode === 409 ? a : b;
    expect(lost.json().error.details).toMatchObject({ field: 'machines[57].identity.macs', index: 57 });
    const loser = a.statusCode === 409 ? 'q7ra' : 'q7rb';
    expect((await t.api('GET', `/api/v1/machines?q=${loser}-&limit=200`)).json().items).toEqual([]);
  });

  it('updates tags (merge, delete), owner, maintenance and protection, recording each', async () => {
    const r = await t.api('PATCH', '/api/v1/machines/rack1-node01', { tags: { rack: 'r2', role: null, zone: 'a' }, owner: 'team-db' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().tags).toEqual({ rack: 'r2', zone: 'a' });
    expect(r.json().owner).toBe('team-db');
    expect(r.json().allocatedAt).not.toBeNull();
    const m = await t.api('PATCH', '/api/v1/machines/rack1-node01', { maintenance: true, maintenanceReason: 'fan noise', protected: true });
    expect(m.json()).toMatchObject({ maintenance: true, maintenanceReason: 'fan noise', protected: true });
    const off = await t.api('PATCH', '/api/v1/machines/rack1-node01', { maintenance: false, protected: false, owner: null });
    expect(off.json()).toMatchObject({ maintenance: false, maintenanceReason: null, protected: false, owner: null, allocatedAt: null });
    const events = (await t.api('GET', '/api/v1/machines/rack1-node01/events')).json().items.map((e: any) => e.action);
    expect(events).toEqual(['enroll', 'update', 'allocate', 'maintenance-on', 'protect', 'deallocate', 'maintenance-off', 'unprotect']);
  });

  it('filters by state, tag, owner and text (name, serial, MAC) and pages with a cursor', async () => {
    for (let i = 0; i < 7; i++) {
      const r = await t.api('POST', '/api/v1/machines', {
        name: `flt-${i}`,
        identity: { serial: `FLT-SER-${i}`, macs: [`52:54:00:f0:00:0${i}`] },
        tags: { pod: i % 2 ? 'odd' : 'even', gpu: i < 2 ? 'yes' : 'no' },
        ...(i === 3 ? { owner: 'alice' } : {}),
      });
      expect(r.statusCode).toBe(201);
    }
    await t.api('POST', '/api/v1/machines/flt-5/actions/inspect', {});
    const names = async (qs: string) => (await t.api('GET', `/api/v1/machines?${qs}`)).json().items.map((m: any) => m.name);
    expect(await names('tag=pod=odd&q=flt')).toEqual(['flt-1', 'flt-3', 'flt-5']);
    expect(await names('tag=pod=even&tag=gpu=yes')).toEqual(['flt-0']);
    expect(await names('tag=gpu&q=flt-')).toHaveLength(7);
    expect(await names('owner=alice')).toEqual(['flt-3']);
    expect(await names('state=inspecting')).toEqual(['flt-5']);
    expect(await names('state=inspecting&state=retired')).toEqual(['flt-5']);
    expect(await names('q=FLT-SER-4')).toEqual(['flt-4']);
    expect(await names('q=flt-ser-4')).toEqual(['flt-4']);
    expect(await names('q=52:54:00:f0:00:06')).toEqual(['flt-6']);
    expect(await names('q=f0:00:0')).toHaveLength(7);
    expect(await names('q=100%25')).toEqual([]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = (await t.api('GET', `/api/v1/machines?q=flt&limit=3${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.items.map((m: any) => m.name));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(['flt-0', 'flt-1', 'flt-2', 'flt-3', 'flt-4', 'flt-5', 'flt-6']);
  });

  it('finds machines by text after renames, MAC changes and deletion, and with short or quoted text', async () => {
    const names = async (q: string) => (await t.api('GET', `/api/v1/machines?q=${encodeURIComponent(q)}`)).json().items.map((m: any) => m.name);
    const made = await t.api('POST', '/api/v1/machines', { name: 'srch-old', identity: { serial: 'SRCH"Q"9', macs: ['52:54:00:5e:00:01'] } });
    expect(made.statusCode, made.body).toBe(201);
    expect(await names('srch-ol')).toEqual(['srch-old']);
    expect((await t.api('PATCH', '/api/v1/machines/srch-old', { name: 'srch-new' })).statusCode).toBe(200);
    expect(await names('srch-ol')).toEqual([]);
    expect(await names('SRCH-NE')).toEqual(['srch-new']);
    expect(await names('"q"')).toEqual(['srch-new']);
    expect(await names('52:54:00:5E:00:01')).toEqual(['srch-new']);
    const moved = await t.api('PATCH', '/api/v1/machines/srch-new', { identity: { macs: ['52:54:00:5e:00:02'] } });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(await names('5e:00:01')).toEqual([]);
    expect(await names('52:54:00:5e:00:02')).toEqual(['srch-new']);
    expect(await names('5e:00:0')).toEqual(['srch-new']);
    expect(await names('w')).toContain('srch-new');
    expect((await t.api('DELETE', '/api/v1/machines/srch-new')).statusCode).toBe(204);
    expect(await names('srch-')).toEqual([]);
    expect(await names('5e:00:02')).toEqual([]);
  });

  it('pages a tag filter in name order after renames and tag changes', async () => {
    for (const n of ['tago-b', 'tago-d', 'tago-f']) {
      expect((await t.api('POST', '/api/v1/machines', { name: n, tags: { tago: 'yes' } })).statusCode).toBe(201);
    }
    const names = async (qs: string) => (await t.api('GET', `/api/v1/machines?${qs}`)).json().items.map((m: any) => m.name);
    expect((await t.api('PATCH', '/api/v1/machines/tago-f', { name: 'tago-a' })).statusCode).toBe(200);
    expect((await t.api('PATCH', '/api/v1/machines/tago-b', { name: 'tago-e', tags: { extra: '1' } })).statusCode).toBe(200);
    expect(await names('tag=tago=yes')).toEqual(['tago-a', 'tago-d', 'tago-e']);
    const first = (await t.api('GET', '/api/v1/machines?tag=tago=yes&limit=2')).json();
    expect(first.items.map((m: any) => m.name)).toEqual(['tago-a', 'tago-d']);
    expect(await names(`tag=tago=yes&limit=2&cursor=${first.nextCursor}`)).toEqual(['tago-e']);
    expect(await names('tag=tago=yes&tag=extra=1')).toEqual(['tago-e']);
    expect(await names('tag=tago=yes&state=enrolled&q=tago-d')).toEqual(['tago-d']);
    expect((await t.api('PATCH', '/api/v1/machines/tago-d', { tags: { tago: null } })).statusCode).toBe(200);
    expect(await names('tag=tago=yes')).toEqual(['tago-a', 'tago-e']);
  });

  it('leaves facts out of lists unless asked', async () => {
    const facts = { cpu: { architecture: 'x86_64' }, hw: [['cpu', 'logical', 'number', '4']] };
    await t.controller.services.store.db.updateTable('machines').set({ facts: JSON.stringify(facts) }).where('name', '=', 'flt-2').execute();
    expect((await t.api('GET', '/api/v1/machines/flt-2')).json().facts).toEqual(facts);
    expect((await t.api('GET', '/api/v1/machines?q=flt-2')).json().items[0].facts).toBeNull();
    expect((await t.api('GET', '/api/v1/machines?q=flt-2&include=facts')).json().items[0].facts).toEqual(facts);
  });

  it('counts the machines a filter matches per state, and filters by power and profile', async () => {
    for (const n of ['count-a', 'count-b', 'count-c']) {
      expect((await t.api('POST', '/api/v1/machines', { name: n, tags: { batch: 'counts' } })).statusCode).toBe(201);
    }
    expect((await t.api('POST', '/api/v1/machines/count-c/actions/retire', {})).statusCode).toBe(200);
    const counts = async (q: string) => {
      const res = await t.api('GET', `/api/v1/machine-counts?tag=batch=counts${q}`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    };
    expect(await counts('')).toEqual({ total: 3, byState: { enrolled: 2, retired: 1 } });
    expect(await counts('&state=retired')).toEqual({ total: 1, byState: { retired: 1 } });
    expect(await counts('&q=count-b')).toEqual({ total: 1, byState: { enrolled: 1 } });
    expect(await counts('&power=unknown')).toEqual({ total: 3, byState: { enrolled: 2, retired: 1 } });
    expect(await counts('&power=on')).toEqual({ total: 0, byState: {} });
    expect(await counts('&profile=no-such-profile')).toEqual({ total: 0, byState: {} });
    expect((await t.api('GET', '/api/v1/machines?tag=batch=counts&power=unknown')).json().items.map((m: any) => m.name)).toEqual(['count-a', 'count-b', 'count-c']);
    expect((await t.api('GET', '/api/v1/machines?tag=batch=counts&power=off')).json().items).toEqual([]);
    await rejected('GET', '/api/v1/machine-counts?power=sideways', undefined, 400, /^power: must be one of/);
    await rejected('GET', '/api/v1/machine-counts?limit=5', undefined, 400, /^limit: /);
    await rejected('GET', '/api/v1/machine-counts?state=flying', undefined, 400, /^state\[0\]: must be one of/);
  });

  it('deletes machines, but not protected ones nor ones with work under way', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'del-me', identity: { macs: ['52:54:00:de:00:01'] } });
    await t.api('POST', '/api/v1/machines', { name: 'del-prot', protected: true });
    await rejected('DELETE', '/api/v1/machines/del-prot', undefined, 409, /protected/);
    await rejected('DELETE', '/api/v1/machines/flt-5', undefined, 409, /while it is inspecting/);
    const r = await t.api('DELETE', '/api/v1/machines/del-me');
    expect(r.statusCode).toBe(204);
    expect((await t.api('GET', '/api/v1/machines/del-me')).statusCode).toBe(404);
    // Its MAC is free again.
    const again = await t.api('POST', '/api/v1/machines', { name: 'del-me-2', identity: { macs: ['52:54:00:de:00:01'] } });
    expect(again.statusCode).toBe(201);
    await rejected('DELETE', '/api/v1/machines/no-such-machine', undefined, 404, /machine 'no-such-machine' not found/);
  });

  it('answers health, the OpenAPI document and the docs without a token', async () => {
    const h = await t.api('GET', '/healthz', undefined, null);
    expect(h.json()).toEqual({ status: 'ok', database: backend.name });
    const doc = await t.api('GET', '/api/v1/openapi.json', undefined, null);
    expect(doc.statusCode).toBe(200);
    const spec = doc.json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/api/v1/machines', '/api/v1/machines/{machine}', '/api/v1/machines/{machine}/actions/{action}', '/api/v1/tokens']));
    // The document is generated from the validating schema: the create body forbids unknown fields.
    const body = spec.paths['/api/v1/machines'].post.requestBody.content['application/json'].schema;
    expect(body.additionalProperties).toBe(false);
    expect((await t.api('GET', '/api/v1/docs/', undefined, null)).statusCode).toBe(200);
    const nf = await t.api('GET', '/api/v1/nothing-here');
    expect(nf.statusCode).toBe(404);
    expect(nf.json().error.code).toBe('not_found');
  });
});
