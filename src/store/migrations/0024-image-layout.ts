import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * What a disk image holds (images/store.ts: `layout`): a whole disk (its own partition table)
 * or one file system, a partition image that the console's keep-partitions writes into one
 * partition. Null for the other kinds (kernels, initrds, ISOs, files). Every disk image stored
 * before was taken for a whole disk, and stays one.
 */
export const imageLayout: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('images').addColumn('layout', 'text').execute();
    await db.updateTable('images').set({ layout: 'whole-disk' }).where('kind', '=', 'disk').execute();
  },
});
