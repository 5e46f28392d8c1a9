import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * A machine's fixed boot address: the IPv4 address Plinth's DHCP server (dhcp.mode full)
 * gives its MACs. Unique while set (both databases let NULLs repeat in a unique index).
 */
export const bootAddress: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('machines').addColumn('boot_address', 'text').execute();
    await db.schema.createIndex('ux_machines_boot_address').on('machines').column('boot_address').unique().execute();
  },
});
