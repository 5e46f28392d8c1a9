import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { sql } from 'kysely';
import { randomBytes } from 'node:crypto';
import { pgAvailable, postgresBackend } from '../support/backends.js';
import { Store } from '../../src/store/database.js';
import { insertMachineRow, listMachineRows } from '../../src/inventory/machine-rows.js';
import type { MachinesTable } from '../../src/store/schema.js';

/**
 * Substring search on a PostgreSQL where pg_trgm cannot be created (a role without CREATE on
 * its database): the store migrates without the trigram indexes and search still answers.
 */
describe.skipIf(!pgAvailable)('substring search without pg_trgm (postgres)', () => {
  let db: Awaited<ReturnType<typeof postgresBackend.create>>;
  let store: Store;
  const role = `plinth_notrgm_${randomBytes(4).toString('hex')}`;
  const admin = async (url: string, ...queries: string[]) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (const q of queries) await c.query(q);
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    db = await postgresBackend.create();
    const dbName = new URL(db.url).pathname.slice(1);
    await admin(db.url, `create role ${role} login`, `revoke create on database ${dbName} from public`, `grant create, usage on schema public to ${role}`);
    const url = new URL(db.url);
    url.username = role;
    store = await Store.open({ url: url.toString() });
  });

  afterAll(async () => {
    await store?.close();
    await db?.drop();
    await admin(new URL('/postgres', db.url).toString(), `drop role if exists ${role}`);
  });

  it('migrates without the extension and finds machines by name, serial and MAC', async () => {
    const ext = await sql<{ extname: string }>`select extname from pg_extension`.execute(store.db);
    expect(ext.rows.map((r) => r.extname)).not.toContain('pg_trgm');
    const now = new Date().toISOString();
    for (let i = 0; i < 3; i++) {
      const row = { id: `00000000-0000-4000-8000-00000000000${i}`, name: `fb-${i}`, serial: `FB-SER-${i}`, state: 'enrolled', state_entered_at: now, created_at: now, updated_at: now } as unknown as MachinesTable;
      await insertMachineRow(store.db, row, [`52:54:00:fb:00:0${i}`], {});
    }
    const names = async (q: string) => (await listMachineRows(store.db, store.dialect, { q }, { limit: 10 })).map((r) => r.name);
    expect(await names('fb-')).toEqual(['fb-0', 'fb-1', 'fb-2']);
    expect(await names('ser-1')).toEqual(['fb-1']);
    expect(await names('52:54:00:FB:00:02')).toEqual(['fb-2']);
    expect(await names('fb:00')).toEqual(['fb-0', 'fb-1', 'fb-2']);
  });
});
