import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The databases integration tests run against (Kysely's pattern: one list of backends,
 * every suite loops over it). SQLite always runs. PostgreSQL runs when reachable at
 * PLINTH_TEST_PG (default the local server); with CI=true it must run, so an unreachable
 * server fails the suite instead of skipping it.
 */
export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Creates an empty database and returns its URL (a file path for SQLite) and a cleanup. */
  create(): Promise<{ url: string; dataDir: string; drop(): Promise<void> }>;
}

const PG_ADMIN_URL = process.env.PLINTH_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Whether the server answers: several tries, each with a generous connect timeout, so that a
 * machine busy enough to delay a connect by seconds (two test files, VMs and benches on two
 * cores) is not taken for one without PostgreSQL. Returns why not, or null.
 */
async function postgresUnreachable(): Promise<string | null> {
  let why = '';
  for (let attempt = 1; attempt <= 5; attempt++) {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 15_000 });
    try {
      await client.connect();
      await client.query('select 1');
      return null;
    } catch (e) {
      why = e instanceof Error ? e.message : String(e);
      // Refused outright: no server there, not a slow one.
      if (/ECONNREFUSED|ENOENT/.test(why) && attempt >= 2) break;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return why || 'no answer';
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'plinth-test-'));

export const sqliteBackend: Backend = {
  name: 'sqlite',
  async create() {
    const dataDir = tempDir();
    return { url: join(dataDir, 'plinth.sqlite'), dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  },
};

export const postgresBackend: Backend = {
  name: 'postgres',
  async create() {
    const name = `plinth_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${name}`;
    const dataDir = tempDir();
    return {
      url: url.toString(),
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
        const c = new pg.Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  },
};

const pgUnreachable = await postgresUnreachable();
const pgAvailable = pgUnreachable === null;
if (!pgAvailable && process.env.CI === 'true') {
  throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL} (${pgUnreachable}) and CI=true: the PostgreSQL tests must run`);
}
if (!pgAvailable) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL} (${pgUnreachable}): PostgreSQL tests skipped (they never skip with CI=true)`);

export const backends: Backend[] = pgAvailable ? [sqliteBackend, postgresBackend] : [sqliteBackend];
export { pgAvailable };
