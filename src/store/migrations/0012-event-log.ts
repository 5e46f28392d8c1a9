import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * One durable event log. Machine events (`events`) and appliance events (`appliance_events`)
 * fold into one `events` table: `type` names the kind (`machine.transition`, `power.…`,
 * `appliance.…`, `run.…`, `image.…`, `security.…`), `machine_id` and `appliance_id` are both
 * optional and are not foreign keys (the log outlives what it speaks of), and `seq` is the
 * cursor readers follow. `id` is the order of insertion; `seq` is given after commit by the
 * sequencer (events/log.ts), so that `seq` order is commit order even when transactions on
 * PostgreSQL commit in another order than they inserted. Existing rows keep their order.
 */
export const eventLog: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    const pg = dialect === 'postgres';
    await db.schema
      .createTable('event_log')
      .addColumn('id', pg ? 'bigserial' : 'integer', (c: any) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('seq', 'bigint', (c) => c.unique())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('machine_id', 'text')
      .addColumn('appliance_id', 'text')
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('from_state', 'text')
      .addColumn('to_state', 'text')
      .addColumn('reason', 'text')
      .addColumn('details', 'text')
      .execute();
    await sql`
      insert into event_log (type, at, machine_id, appliance_id, actor, action, from_state, to_state, reason, details)
      select type, at, machine_id, appliance_id, actor, action, from_state, to_state, reason, details from (
        select case when from_state is not null and to_state is not null and from_state <> to_state then 'machine.transition' else 'machine.' || action end as type,
               at, machine_id, null as appliance_id, actor, action, from_state, to_state, reason, details, 0 as src, id
          from events
        union all
        select 'appliance.' || case when action like 'appliance-%' then substr(action, 11) else action end,
               at, null, appliance_id, actor, action, null, null, reason, details, 1, id
          from appliance_events
      ) old order by at, src, id`.execute(db);
    await sql`update event_log set seq = id`.execute(db);
    await db.schema.dropTable('events').execute();
    await db.schema.dropTable('appliance_events').execute();
    await db.schema.alterTable('event_log').renameTo('events').execute();
    await db.schema.createIndex('ix_events_machine').on('events').columns(['machine_id', 'id']).execute();
    await db.schema.createIndex('ix_events_appliance').on('events').columns(['appliance_id', 'id']).execute();
    // The sequencer looks for rows without a seq; few are ever waiting.
    await db.schema.createIndex('ix_events_unsequenced').on('events').column('id').where(sql.ref('seq'), 'is', null).execute();
  },
});
