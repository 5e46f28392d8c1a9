import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * The machine list filtered by power reading (`?power=on`, the web UI's Power filter) reads
 * machines in name order: this index gives that order among one power reading, instead of a
 * walk over every machine in name order (157 ms for a page at 100 000 machines on SQLite).
 */
export const powerFilter: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.createIndex('ix_machines_power_name').on('machines').columns(['power_state', 'name']).execute();
  },
});
