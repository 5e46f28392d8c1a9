import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/** Boot attempts and the boot trace; chain nonces that tie a /boot.ipxe fetch to the machine that follows it. */
export const boot: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    const autoId = dialect === 'postgres' ? 'bigserial' : 'integer';
    const autoIdColumn = (c: any) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());

    await db.schema
      .createTable('boot_attempts')
      // seq orders attempts even when two start within the same millisecond.
      .addColumn('seq', autoId, autoIdColumn)
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('run_id', 'text')
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('remote_addr', 'text')
      .addColumn('platform', 'text')
      .addColumn('arch', 'text')
      .addColumn('boot_mac', 'text')
      .addColumn('decision', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_boot_attempts_machine').on('boot_attempts').columns(['machine_id', 'seq']).execute();

    await db.schema
      .createTable('boot_trace')
      .addColumn('id', autoId, autoIdColumn)
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('attempt_id', 'text', (c) => c.references('boot_attempts.id').onDelete('cascade'))
      .addColumn('run_id', 'text')
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('stage', 'text', (c) => c.notNull())
      .addColumn('detail', 'text')
      .execute();
    await db.schema.createIndex('ix_boot_trace_machine').on('boot_trace').columns(['machine_id', 'id']).execute();

    await db.schema
      .createTable('boot_chains')
      .addColumn('nonce', 'text', (c) => c.primaryKey())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('remote_addr', 'text')
      .execute();
    await db.schema.createIndex('ix_boot_chains_at').on('boot_chains').column('at').execute();
  },
});
