import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Profiles, pools (eDeploy's CMDB) and pool entries; what each machine matched.
 * - `profiles.quota` is the remaining count (eDeploy's `state`), null for unlimited; it is
 *   only ever changed by conditional updates, so it can never go below zero.
 * - `pool_entries.original` is the entry as written (or generated); `data` is what it holds
 *   now (eDeploy writes the machine's variables into the entry it takes). `machine_id` says
 *   which machine holds it; the partial unique index keeps one machine to one entry per pool.
 * - machines record the profile they matched, their variables (`match_vars`, the spec's own
 *   in `match_spec_vars`), the entry they hold, why matching failed, and whether they count
 *   against their profile's quota (`quota_held`).
 */
export const matching: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('pools')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('model', 'text')
      .addColumn('description', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('profiles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('spec_source', 'text')
      .addColumn('quota', 'integer')
      .addColumn('pool_id', 'text', (c) => c.references('pools.id'))
      .addColumn('release_returns_entry', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('deploy', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addCheckConstraint('ck_profiles_quota', sql`quota is null or quota >= 0`)
      .execute();
    await db.schema.createIndex('ix_profiles_position').on('profiles').columns(['position', 'name']).execute();

    await db.schema
      .createTable('pool_entries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('pool_id', 'text', (c) => c.notNull().references('pools.id').onDelete('cascade'))
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('original', 'text', (c) => c.notNull())
      .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('machine_id', 'text', (c) => c.references('machines.id').onDelete('set null'))
      .addColumn('allocated_at', 'text')
      .execute();
    await db.schema.createIndex('ux_pool_entries_position').unique().on('pool_entries').columns(['pool_id', 'position']).execute();
    await db.schema
      .createIndex('ux_pool_entries_machine')
      .unique()
      .on('pool_entries')
      .columns(['pool_id', 'machine_id'])
      .where('machine_id', 'is not', null)
      .execute();
    await db.schema.createIndex('ix_pool_entries_machine').on('pool_entries').column('machine_id').execute();

    await db.schema.alterTable('machines').addColumn('profile_id', 'text', (c) => c.references('profiles.id').onDelete('set null')).execute();
    await db.schema.alterTable('machines').addColumn('match_vars', 'text').execute();
    await db.schema.alterTable('machines').addColumn('match_spec_vars', 'text').execute();
    await db.schema.alterTable('machines').addColumn('pool_entry_id', 'text', (c) => c.references('pool_entries.id').onDelete('set null')).execute();
    await db.schema.alterTable('machines').addColumn('match_error', 'text').execute();
    await db.schema.alterTable('machines').addColumn('matched_at', 'text').execute();
    await db.schema.alterTable('machines').addColumn('quota_held', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.createIndex('ix_machines_profile').on('machines').columns(['profile_id', 'quota_held']).execute();
  },
});
