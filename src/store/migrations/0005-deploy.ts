import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * The image store, template overrides (site, profile, machine), the callback secret a
 * deploy's rendered artifacts carry, and what a deployed machine runs and where to reach it.
 */
export const deploy: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('images')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('file', 'text', (c) => c.notNull())
      .addColumn('source_format', 'text', (c) => c.notNull())
      .addColumn('size_bytes', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('firmware', 'text')
      .addColumn('manifest', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('template_overrides')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('scope_key', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('ux_template_overrides')
      .unique()
      .on('template_overrides')
      .columns(['scope', 'scope_key', 'kind', 'name'])
      .execute();

    await db.schema.alterTable('runs').addColumn('callback_hash', 'text').execute();
    await db.schema.createIndex('ix_runs_callback').on('runs').column('callback_hash').execute();
    await db.schema.alterTable('machines').addColumn('deployed_image', 'text').execute();
    await db.schema.alterTable('machines').addColumn('deployed_address', 'text').execute();
    await db.schema.alterTable('machines').addColumn('deployed_at', 'text').execute();
    // The base URL the machine last reached the controller at: what rendered artifacts point to.
    await db.schema.alterTable('machines').addColumn('boot_base_url', 'text').execute();
  },
});
