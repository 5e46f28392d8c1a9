import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { roleAtLeast } from '../../src/auth/tokens.js';

type TC = Awaited<ReturnType<typeof freshController>>;

describe('roles', () => {
  it('orders admin > operator > reader', () => {
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('operator', 'operator')).toBe(true);
    expect(roleAtLeast('reader', 'operator')).toBe(false);
    expect(roleAtLeast('operator', 'admin')).toBe(false);
  });
});

describe.each(backends)('authentication and roles on $name', (backend) => {
  let t: TC;
  let reader: string;
  let operator: string;
  beforeAll(async () => {
    t = await freshController(backend);
    reader = (await t.api('POST', '/api/v1/tokens', { name: 'ro', role: 'reader' })).json().token;
    operator = (await t.api('POST', '/api/v1/tokens', { name: 'ops', role: 'operator' })).json().token;
    await t.api('POST', '/api/v1/machines', { name: 'auth-1' });
  });
  afterAll(async () => t?.close());

  it('writes the first admin token to DATA_DIR/admin.token with mode 0600', () => {
    const st = statSync(join(t.config.dataDir, 'admin.token'));
    expect(st.mode & 0o777).toBe(0o600);
    expect(t.adminToken).toMatch(/^plinth_[A-Za-z0-9_-]{43}$/);
  });

  it('keeps the same admin token across restarts', async () => {
    const before = await t.controller.services.tokens.list();
    const again = await t.controller.services.tokens.ensureBootstrapAdmin(t.config.dataDir);
    expect(again).toEqual({ path: join(t.config.dataDir, 'admin.token'), created: false });
    expect(await t.controller.services.tokens.list()).toEqual(before);
  });

  it('answers 401 without a valid token, changing nothing', async () => {
    const before = await snapshot(t.controller);
    for (const token of [null, 'plinth_nope', 'garbage']) {
      const r = await t.api('POST', '/api/v1/machines', { name: 'auth-x' }, token);
      expect(r.statusCode).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(r.json().error.code).toBe('unauthorized');
    }
    expect((await t.api('GET', '/api/v1/machines', undefined, null)).statusCode).toBe(401);
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('lets a reader read and nothing else', async () => {
    expect((await t.api('GET', '/api/v1/machines', undefined, reader)).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/machines/auth-1/events', undefined, reader)).statusCode).toBe(200);
    const before = await snapshot(t.controller);
    const attempts: [string, string, unknown][] = [
      ['POST', '/api/v1/machines', { name: 'auth-2' }],
      ['PATCH', '/api/v1/machines/auth-1', { owner: 'me' }],
      ['DELETE', '/api/v1/machines/auth-1', undefined],
      ['POST', '/api/v1/machines/auth-1/actions/inspect', {}],
      ['POST', '/api/v1/tokens', { name: 'x', role: 'admin' }],
      ['GET', '/api/v1/tokens', undefined],
    ];
    for (const [m, p, b] of attempts) {
      const r = await t.api(m, p, b, reader);
      expect(r.statusCode, `${m} ${p}`).toBe(403);
      expect(r.json().error.message).toMatch(/^token 'ro' has role reader; this needs (operator|admin)$/);
    }
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('lets an operator change machines but not tokens', async () => {
    expect((await t.api('PATCH', '/api/v1/machines/auth-1', { owner: 'ops-team' }, operator)).statusCode).toBe(200);
    expect((await t.api('POST', '/api/v1/machines/auth-1/actions/inspect', {}, operator)).statusCode).toBe(200);
    expect((await t.api('GET', '/api/v1/tokens', undefined, operator)).statusCode).toBe(403);
    const ev = (await t.api('GET', '/api/v1/machines/auth-1/events')).json().items.at(-1);
    expect(ev.actor).toBe('operator:ops');
  });

  it('lists tokens without secrets, rejects duplicate names, revokes', async () => {
    const list = await t.api('GET', '/api/v1/tokens');
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(reader);
    expect(list.body).not.toMatch(/token_hash|"hash"/);
    expect(list.json().items.map((x: any) => [x.name, x.role])).toEqual([
      ['admin', 'admin'],
      ['ro', 'reader'],
      ['ops', 'operator'],
    ]);
    const dup = await t.api('POST', '/api/v1/tokens', { name: 'ro', role: 'reader' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.message).toBe("name 'ro' is already in use");
    const bad = await t.api('POST', '/api/v1/tokens', { name: 'r2', role: 'root' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^role: must be one of reader, operator, admin/);
    const r = await t.api('DELETE', '/api/v1/tokens/ro');
    expect(r.json().revokedAt).not.toBeNull();
    expect((await t.api('GET', '/api/v1/machines', undefined, reader)).statusCode).toBe(401);
    expect((await t.api('DELETE', '/api/v1/tokens/nobody')).statusCode).toBe(404);
  });

  it('refuses expired tokens', async () => {
    const past = new Date(Date.now() - 1000).toISOString();
    const { token } = (await t.api('POST', '/api/v1/tokens', { name: 'old', role: 'admin', expiresAt: past })).json();
    expect((await t.api('GET', '/api/v1/machines', undefined, token)).statusCode).toBe(401);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const fresh = (await t.api('POST', '/api/v1/tokens', { name: 'new', role: 'reader', expiresAt: future })).json().token;
    expect((await t.api('GET', '/api/v1/whoami', undefined, fresh)).json()).toMatchObject({ name: 'new', role: 'reader' });
  });

  it('compares expiry as instants whatever offset it was written with', async () => {
    // The same instant written in another offset: +14:00 text sorts after today's UTC text
    // although the instant is an hour ago; -12:00 text sorts before it although it is ahead.
    const inOffset = (d: Date, hours: number) => {
      const local = new Date(d.getTime() + hours * 3_600_000).toISOString().slice(0, 19);
      const sign = hours < 0 ? '-' : '+';
      return `${local}${sign}${String(Math.abs(hours)).padStart(2, '0')}:00`;
    };
    const hourAgo = new Date(Date.now() - 3_600_000);
    const expired = (await t.api('POST', '/api/v1/tokens', { name: 'kiribati', role: 'admin', expiresAt: inOffset(hourAgo, 14) })).json();
    expect(expired.record.expiresAt).toBe(new Date(Math.floor(hourAgo.getTime() / 1000) * 1000).toISOString());
    expect((await t.api('GET', '/api/v1/whoami', undefined, expired.token)).statusCode).toBe(401);
    const inAnHour = new Date(Date.now() + 3_600_000);
    const live = (await t.api('POST', '/api/v1/tokens', { name: 'baker', role: 'reader', expiresAt: inOffset(inAnHour, -12) })).json().token;
    expect((await t.api('GET', '/api/v1/whoami', undefined, live)).json()).toMatchObject({ name: 'baker' });
    // A row written before expiries were stored in UTC is compared as an instant too.
    const legacy = (await t.api('POST', '/api/v1/tokens', { name: 'legacy', role: 'admin' })).json();
    await t.controller.services.store.db.updateTable('api_tokens').set({ expires_at: inOffset(hourAgo, 14) }).where('name', '=', 'legacy').execute();
    expect((await t.api('GET', '/api/v1/whoami', undefined, legacy.token)).statusCode).toBe(401);
  });

  it('refuses an expiry it cannot hold with a 400 naming expiresAt', async () => {
    const before = await snapshot(t.controller);
    const r = await t.api('POST', '/api/v1/tokens', { name: 'leap', role: 'admin', expiresAt: '2030-06-30T23:59:60Z' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.details.field).toBe('expiresAt');
    expect(await snapshot(t.controller)).toBe(before);
  });
});
