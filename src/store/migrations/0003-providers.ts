import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Appliances (BMCs, hypervisors, the QEMU lab) with encrypted credentials; provider jobs, a
 * queue in the database so that power and boot-device work survives restarts and can be run
 * by a remote manager; managers' liveness; machines' power expectations.
 */
export const providers: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    const autoId = dialect === 'postgres' ? 'bigserial' : 'integer';
    const autoIdColumn = (c: any) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());

    await db.schema
      .createTable('appliances')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('username', 'text')
      .addColumn('password_enc', 'text')
      .addColumn('insecure', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('ca_cert', 'text')
      .addColumn('options', 'text')
      .addColumn('site', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('provider_jobs')
      .addColumn('seq', autoId, autoIdColumn)
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('appliance_id', 'text', (c) => c.notNull().references('appliances.id').onDelete('cascade'))
      .addColumn('machine_id', 'text', (c) => c.references('machines.id').onDelete('cascade'))
      .addColumn('run_id', 'text')
      .addColumn('site', 'text')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('claimed_by', 'text')
      .addColumn('lease_until', 'text')
      .addColumn('deadline', 'text', (c) => c.notNull())
      .addColumn('result', 'text')
      .addColumn('error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .execute();
    await db.schema.createIndex('ix_provider_jobs_queue').on('provider_jobs').columns(['status', 'site', 'seq']).execute();
    await db.schema.createIndex('ix_provider_jobs_machine').on('provider_jobs').columns(['machine_id', 'seq']).execute();

    await db.schema
      .createTable('managers')
      .addColumn('site', 'text', (c) => c.primaryKey())
      .addColumn('last_seen', 'text', (c) => c.notNull())
      .addColumn('version', 'text')
      .addColumn('address', 'text')
      .execute();

    await db.schema.alterTable('machines').addColumn('power_expected', 'text').execute();
    await db.schema.alterTable('machines').addColumn('power_drift', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.createIndex('ix_machines_appliance').on('machines').column('appliance_id').execute();
  },
});
