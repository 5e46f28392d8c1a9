import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

interface Pending {
  work: (trx: Db) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Group commit: the work of concurrent callers in one transaction, one after the other, each
 * in a savepoint of its own. One caller's failure rolls back its savepoint only and reaches
 * that caller alone; the others commit. What a transaction costs besides its statements
 * (SQLite's FTS5 index writes a segment per commit; PostgreSQL flushes its log) is paid once
 * per batch: bench/results/*-inventory*.md measures it with raw SQL in the same run.
 *
 * One batch runs at a time (SQLite has one writer); it starts at once, so a lone caller waits
 * for nothing, and callers arriving while it runs make up the next one (at most `maxBatch`). When
 * a batch's transaction itself fails (its commit, the connection, a deadlock), nothing of it
 * was kept and each caller's work runs again in a transaction of its own.
 *
 * The work must do nothing but database work on `trx`, and must be safe to run again: it may
 * run inside a batch that then fails, and once more alone.
 */
export class GroupCommit {
  private readonly queue: Pending[] = [];
  private running = false;

  constructor(
    private readonly transaction: <T>(fn: (trx: Db) => Promise<T>) => Promise<T>,
    private readonly opts: { maxBatch: number },
  ) {}

  run<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.running = true;
    void this.commit(batch).finally(() => {
      this.running = false;
      this.next();
    });
  }

  private async commit(batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.transaction(async (trx) => {
        const done: Outcome[] = [];
        for (const p of batch) done.push(await inSavepoint(trx, p.work));
        return done;
      });
    } catch {
      await Promise.all(batch.map((p) => this.transaction(p.work).then(p.resolve, p.reject)));
      return;
    }
    outcomes.forEach((o, i) => (o.ok ? batch[i]!.resolve(o.value) : batch[i]!.reject(o.error)));
  }
}

async function inSavepoint(trx: Db, work: (trx: Db) => Promise<unknown>): Promise<Outcome> {
  await sql`savepoint group_commit`.execute(trx);
  try {
    const value = await work(trx);
    await sql`release savepoint group_commit`.execute(trx);
    return { ok: true, value };
  } catch (error) {
    // Failing here fails the whole batch, which then runs each caller alone.
    await sql`rollback to savepoint group_commit`.execute(trx);
    await sql`release savepoint group_commit`.execute(trx);
    return { ok: false, error };
  }
}
