import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Appliance health: what the last provider calls said about the appliance itself (`ok`,
 * `auth`: its credentials were refused, `unreachable`, `error`; `unknown` until a call
 * says), the provider's message and when it changed. `appliance_events` is the appliance's
 * own history (health changes, credential updates, machines moved), apart from machine
 * events because it belongs to no machine.
 */
export const applianceHealth: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('appliances').addColumn('health', 'text', (c) => c.notNull().defaultTo('unknown')).execute();
    await db.schema.alterTable('appliances').addColumn('health_error', 'text').execute();
    await db.schema.alterTable('appliances').addColumn('health_at', 'text').execute();
    await db.schema
      .createTable('appliance_events')
      .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c: any) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('appliance_id', 'text', (c) => c.notNull().references('appliances.id').onDelete('cascade'))
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('details', 'text')
      .execute();
    await db.schema.createIndex('ix_appliance_events_appliance').on('appliance_events').columns(['appliance_id', 'id']).execute();
  },
});
