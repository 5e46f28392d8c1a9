import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/** Inventory, lifecycle history, runs and API tokens. */
export const foundation: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    const autoId = dialect === 'postgres' ? 'bigserial' : 'integer';
    const autoIdColumn = (c: any) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());

    await db.schema
      .createTable('machines')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('system_uuid', 'text')
      .addColumn('serial', 'text')
      .addColumn('manufacturer', 'text')
      .addColumn('product_name', 'text')
      .addColumn('asset_tag', 'text')
      .addColumn('facts', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('target_state', 'text')
      .addColumn('state_deadline', 'text')
      .addColumn('state_entered_at', 'text', (c) => c.notNull())
      .addColumn('last_stage', 'text')
      .addColumn('power_state', 'text', (c) => c.notNull().defaultTo('unknown'))
      .addColumn('power_read_at', 'text')
      .addColumn('power_source', 'text')
      .addColumn('maintenance', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('maintenance_reason', 'text')
      .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('owner', 'text')
      .addColumn('allocated_at', 'text')
      .addColumn('appliance_id', 'text')
      .addColumn('provider_ref', 'text')
      .addColumn('last_error', 'text')
      .addColumn('identity_conflicts', 'text')
      .addColumn('current_run_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
      .execute();
    await db.schema.createIndex('ux_machines_name').unique().on('machines').column('name').execute();
    await db.schema.createIndex('ux_machines_system_uuid').unique().on('machines').column('system_uuid').execute();
    // A serial is unique per manufacturer; an unknown manufacturer counts as one value, so that
    // two controllers enrolling the same serial at once cannot both succeed.
    await db.schema
      .createIndex('ux_machines_serial')
      .unique()
      .on('machines')
      .expression(sql`serial, coalesce(manufacturer, '')`)
      .execute();
    await db.schema.createIndex('ux_machines_asset_tag').unique().on('machines').column('asset_tag').execute();
    await db.schema.createIndex('ix_machines_state').on('machines').columns(['state', 'name']).execute();
    await db.schema.createIndex('ix_machines_owner').on('machines').columns(['owner', 'name']).execute();
    await db.schema.createIndex('ix_machines_deadline').on('machines').column('state_deadline').execute();

    await db.schema
      .createTable('machine_macs')
      .addColumn('mac', 'text', (c) => c.primaryKey())
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .execute();
    await db.schema.createIndex('ix_machine_macs_machine').on('machine_macs').column('machine_id').execute();

    await db.schema
      .createTable('machine_tags')
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_machine_tags', ['machine_id', 'key'])
      .execute();
    await db.schema.createIndex('ix_machine_tags_kv').on('machine_tags').columns(['key', 'value']).execute();

    await db.schema
      .createTable('events')
      .addColumn('id', autoId, autoIdColumn)
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('from_state', 'text')
      .addColumn('to_state', 'text')
      .addColumn('reason', 'text')
      .addColumn('details', 'text')
      .execute();
    await db.schema.createIndex('ix_events_machine').on('events').columns(['machine_id', 'id']).execute();

    await db.schema
      .createTable('runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('steps', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('token_hash', 'text')
      .addColumn('reused_from', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('finished_at', 'text')
      .execute();
    await db.schema.createIndex('ix_runs_machine').on('runs').columns(['machine_id', 'created_at']).execute();
    await db.schema.createIndex('ux_runs_token').unique().on('runs').column('token_hash').execute();

    await db.schema
      .createTable('run_artifacts')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('pk_run_artifacts', ['run_id', 'name'])
      .execute();

    await db.schema
      .createTable('run_logs')
      .addColumn('id', autoId, autoIdColumn)
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('stream', 'text', (c) => c.notNull())
      .addColumn('line', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ix_run_logs_run').on('run_logs').columns(['run_id', 'id']).execute();

    await db.schema
      .createTable('api_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text')
      .addColumn('last_used_at', 'text')
      .addColumn('expires_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('ux_api_tokens_name').unique().on('api_tokens').column('name').execute();
    await db.schema.createIndex('ux_api_tokens_hash').unique().on('api_tokens').column('token_hash').execute();
  },
});
