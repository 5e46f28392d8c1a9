import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Run claims and per-run limits. A boot request hands out a ticket bound to the run's
 * `token_epoch`; the agent's first call claims the run (`token_hash`), and only the
 * controller re-arms it (epoch + 1). Each deploy seals its own callback secret
 * (`callback_sealed`) beside its artifacts, which carry a placeholder instead. `log_bytes`
 * counts what the agent has logged against `agent.logLimit`.
 */
export const runClaims: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('runs').addColumn('token_epoch', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('runs').addColumn('log_bytes', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('runs').addColumn('callback_sealed', 'text').execute();
  },
});
