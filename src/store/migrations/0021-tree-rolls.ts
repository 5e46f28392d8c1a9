import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Rolling upgrades of trees: a roll takes a group of machines of one role to a version, N at a
 * time, stopping at the first failure. Each machine's place in it is a row; `active` is 1 while
 * its roll runs, and a machine may be active in one roll only (a partial unique index, so two
 * controllers starting rolls at once cannot both take it).
 */
export const treeRolls: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('tree_rolls')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('to_version', 'text', (c) => c.notNull())
      .addColumn('parallel', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addColumn('failed_machine_id', 'text')
      .addColumn('failure', 'text')
      .execute();
    await db.schema.createIndex('ix_tree_rolls_created').on('tree_rolls').columns(['created_at', 'id']).execute();
    await db.schema
      .createTable('tree_roll_machines')
      .addColumn('roll_id', 'text', (c) => c.notNull().references('tree_rolls.id').onDelete('cascade'))
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('active', 'integer', (c) => c.notNull())
      .addColumn('from_version', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .addColumn('message', 'text')
      .addPrimaryKeyConstraint('pk_tree_roll_machines', ['roll_id', 'machine_id'])
      .execute();
    await db.schema.createIndex('ux_tree_roll_machines_active').on('tree_roll_machines').column('machine_id').unique().where(sql<boolean>`active = 1`).execute();
  },
});
