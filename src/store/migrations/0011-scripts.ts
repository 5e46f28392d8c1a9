import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Scripts on machines (MAAS's commissioning and testing scripts, hardcap's discovery scripts):
 * `scripts` is the controller's library (those marked `inspect` run in every inspection);
 * `script_results` keeps what each run of a script on a machine gave: exit code, output,
 * produced files, duration.
 */
export const scripts: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('scripts')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('content', 'text', (c) => c.notNull())
      .addColumn('inspect', 'integer', (c) => c.notNull())
      .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('script_results')
      .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c: any) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('exit_code', 'integer')
      .addColumn('timed_out', 'integer', (c) => c.notNull())
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('output', 'text', (c) => c.notNull())
      .addColumn('files', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_script_results_machine').on('script_results').columns(['machine_id', 'id']).execute();
    await db.schema.createIndex('ux_script_results_run_name').on('script_results').columns(['run_id', 'name']).unique().execute();
  },
});
