import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Text search (`?q=`) over name, serial, asset tag and system UUID scans this narrow index
 * instead of the machines table, whose rows carry the facts document (most of their bytes).
 */
export const search: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.createIndex('ix_machines_search').on('machines').columns(['name', 'serial', 'asset_tag', 'system_uuid', 'id']).execute();
  },
});
