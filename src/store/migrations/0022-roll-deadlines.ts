import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/** The per-machine deadline of a roll made before it had one (trees/rolls.ts: ROLL_DEFAULT_DEADLINE_SECONDS). */
const DEFAULT_DEADLINE_SECONDS = 3600;

/**
 * A rolling upgrade's per-machine deadline: a roll holds how long each machine has, from being
 * asked, to report the roll's version (`deadline_seconds`); each machine's place holds when that
 * runs out (`deadline_at`, set when it is asked, indexed for the sweep) and when its host first
 * polled and was told (`polled_at`), so an expiry can say which of the two never happened.
 * Rolls made before get the default, and their machines already asked get it from when they were.
 */
export const rollDeadlines: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('tree_rolls').addColumn('deadline_seconds', 'integer', (c) => c.notNull().defaultTo(DEFAULT_DEADLINE_SECONDS)).execute();
    await db.schema.alterTable('tree_roll_machines').addColumn('deadline_at', 'text').execute();
    await db.schema.alterTable('tree_roll_machines').addColumn('polled_at', 'text').execute();
    await db.schema.createIndex('ix_tree_roll_machines_deadline').on('tree_roll_machines').columns(['state', 'deadline_at']).execute();
    const asked: { roll_id: string; machine_id: string; started_at: string }[] = await db
      .selectFrom('tree_roll_machines')
      .select(['roll_id', 'machine_id', 'started_at'])
      .where('state', '=', 'upgrading')
      .where('started_at', 'is not', null)
      .execute();
    for (const e of asked) {
      const deadline = new Date(Date.parse(e.started_at) + DEFAULT_DEADLINE_SECONDS * 1000).toISOString();
      await db.updateTable('tree_roll_machines').set({ deadline_at: deadline }).where('roll_id', '=', e.roll_id).where('machine_id', '=', e.machine_id).execute();
    }
  },
});
