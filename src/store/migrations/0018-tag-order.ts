import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * A page of machines with a tag (`?tag=rack=r17`, with or without a state) comes from the tag
 * index in name order: machine_tags carries its machine's name (written with the tags and on
 * a rename, machine-rows.ts), and the index is (key, value, machine_name). Before,
 * both engines either walked every machine in name order probing the tag index (PostgreSQL,
 * 8 000 probes for a page) or looked up and sorted every tagged machine (SQLite).
 */
export const tagOrder: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('machine_tags').addColumn('machine_name', 'text').execute();
    await sql`update machine_tags set machine_name = (select m.name from machines m where m.id = machine_tags.machine_id)`.execute(db);
    await db.schema.dropIndex('ix_machine_tags_kv').execute();
    await db.schema.createIndex('ix_machine_tags_kv_name').on('machine_tags').columns(['key', 'value', 'machine_name']).execute();
  },
});
