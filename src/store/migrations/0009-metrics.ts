import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Metrics count machines by (state, power state) at every scrape. This index holds exactly
 * those two columns, so the GROUP BY reads the index alone instead of every wide machines row
 * (facts documents included).
 */
export const metrics: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.createIndex('ix_machines_state_power').on('machines').columns(['state', 'power_state']).execute();
  },
});
