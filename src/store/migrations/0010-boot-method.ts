import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Boot method (core/boot-method.ts): an appliance's default for its machines (`pxe` for every
 * existing one), and a machine's own override (null: its appliance's).
 */
export const bootMethod: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('appliances').addColumn('boot_method', 'text', (c) => c.notNull().defaultTo('pxe')).execute();
    await db.schema.alterTable('machines').addColumn('boot_method', 'text').execute();
  },
});
