import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type SelectQueryBuilder,
  type SqliteDatabase,
} from 'kysely';
import type { Database } from './schema.js';
import { migrationProvider } from './migrations/index.js';
import type { Dialect } from './dialect.js';
import { PlinthError } from '../core/errors.js';
import { GroupCommit } from './group-commit.js';

export type { Dialect } from './dialect.js';
export type Db = Kysely<Database>;

export interface StoreOptions {
  /** postgres://… for PostgreSQL; otherwise the path of the SQLite file (':memory:' for tests). */
  url: string;
  /** Connection pool size for PostgreSQL. */
  poolSize?: number;
}

/**
 * The database: one Kysely instance, a dialect-aware transaction and row lock, and
 * migrations. Per-machine locking lives here, in the database, never in process memory,
 * so several controllers can share one PostgreSQL:
 * - PostgreSQL: READ COMMITTED transactions with `SELECT … FOR UPDATE` on the rows a
 *   transaction will change;
 * - SQLite: `BEGIN IMMEDIATE` takes the database write lock at the start of every write
 *   transaction, so writers (in this process or another one on the same file) are serialised.
 */
export class Store {
  readonly db: Db;
  readonly dialect: Dialect;
  private closed = false;
  private readonly group: GroupCommit;

  private constructor(db: Db, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
    this.group = new GroupCommit((fn) => this.transaction(fn), { maxBatch: 100 });
  }

  static async open(options: StoreOptions): Promise<Store> {
    const store = isPostgresUrl(options.url) ? Store.postgres(options) : Store.sqlite(options.url);
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  private static sqlite(path: string): Store {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const database = new BetterSqlite3(path);
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    // Other controllers or CLI processes may hold the write lock briefly; wait for it.
    database.pragma('busy_timeout = 15000');
    // Query-planner statistics: SQLite gathers none by itself. Its advice for long-lived
    // connections: this at open (analyses, within a bound, the tables that need it), and
    // `optimize` again at close.
    database.pragma('optimize = 0x10002');
    return new Store(new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(database) }) }), 'sqlite');
  }

  private static postgres(options: StoreOptions): Store {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
    // Idle clients can error when the server restarts; the pool replaces them.
    pool.on('error', () => undefined);
    return new Store(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres');
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new PlinthError('internal', `database migration ${failed} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Runs `fn` in one write transaction. Everything `fn` does commits together or not at all.
   * Keep it short and free of network I/O: on SQLite it holds the database write lock.
   */
  async transaction<T>(fn: (trx: Db) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') return this.db.transaction().execute(fn);
    return this.db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (e) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw e;
      }
    });
  }

  /**
   * Runs `fn` as `transaction` does, for work that many callers do at once (enrolments). On
   * SQLite it shares the transaction with concurrent callers (group commit, group-commit.ts):
   * it still commits or rolls back on its own, but its commit waits for the batch's; `fn` does
   * database work only and may run twice. On PostgreSQL, where each transaction has its own
   * connection and the time goes in statement round trips rather than commits, concurrent
   * transactions are faster than one batch's statements in a row (bench/results, inventory).
   */
  groupTransaction<T>(fn: (trx: Db) => Promise<T>): Promise<T> {
    return this.dialect === 'sqlite' ? this.group.run(fn) : this.transaction(fn);
  }

  /** Adds `FOR UPDATE` on PostgreSQL; on SQLite the transaction already holds the write lock. */
  forUpdate<QB extends SelectQueryBuilder<any, any, any>>(qb: QB): QB {
    return this.dialect === 'postgres' ? (qb.forUpdate() as QB) : qb;
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.dialect === 'sqlite') await sql`pragma optimize`.execute(this.db).catch(() => undefined);
    await this.db.destroy();
  }
}

/**
 * The SQLite connection as Kysely sees it, keeping each statement it prepared for the next
 * query with the same SQL text (Kysely prepares every query anew; preparing was a sixth of an
 * enrolment's CPU time). better-sqlite3 runs a statement to its end before returning, so one
 * statement serves every query with its text; SQLite prepares it again by itself if the
 * schema changes. The least recently used statements go past `size`.
 */
function cachingStatements(database: BetterSqlite3.Database, size = 1000): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement) statements.delete(text);
      else {
        statement = database.prepare(text);
        if (statements.size >= size) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
}

export const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//.test(url);

/**
 * If `e` is a unique-constraint violation, the name of the index or `table.column` list it
 * names (SQLite says `UNIQUE constraint failed: machines.name`, PostgreSQL gives the index).
 */
export function uniqueViolation(e: unknown): string | null {
  const err = e as { code?: string; constraint?: string; message?: string };
  if (err?.code === '23505') return err.constraint ?? 'unique';
  if (err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const m = /constraint failed: (.+)$/.exec(err.message ?? '');
    return m ? m[1]!.trim() : 'unique';
  }
  return null;
}

/**
 * True when PostgreSQL refused a NUL character (U+0000): `22021` in text, `22P05` in jsonb.
 * The API refuses NUL before any handler runs (api/nul.ts); this catches what other paths
 * let through, so it is a client error rather than a 500.
 */
export function nulRefused(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '22021' || code === '22P05';
}

/** Parses a JSON text column (PostgreSQL may hand back parsed values for json types). */
export function fromJson<T>(value: string | null | undefined, fallback: T): T {
  if (value === null || value === undefined) return fallback;
  if (typeof value !== 'string') return value as T;
  return JSON.parse(value) as T;
}

export const toJson = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
