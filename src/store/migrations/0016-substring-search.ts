import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Substring search (`?q=`) through trigram indexes instead of a scan of every machine and MAC
 * (1.5 s a query at 100 000 machines on PostgreSQL, 0.25 s on SQLite; bench/results/*-inventory.md).
 *
 * PostgreSQL: GIN indexes with pg_trgm's operator class on the searched columns, which serve
 * `ILIKE '%…%'` as they are. pg_trgm ships with the server and is a trusted extension (any
 * role that may create objects in the database may create it); where it still cannot be
 * created, the migration goes on without these indexes and search scans as before.
 *
 * SQLite: an FTS5 table with the trigram tokenizer over one row per machine
 * (`machine_search_rows`: name, serial, asset tag, system UUID and the MACs), kept current by
 * triggers on machines and machine_macs, so no writer has to remember it. The store's query
 * asks it for candidates and keeps the exact LIKE test on them (machine-rows.ts).
 */
export const substringSearch: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    if (dialect === 'postgres') {
      await sql`savepoint pg_trgm`.execute(db);
      try {
        await sql`create extension if not exists pg_trgm`.execute(db);
        await sql`release savepoint pg_trgm`.execute(db);
      } catch {
        await sql`rollback to savepoint pg_trgm`.execute(db);
        return;
      }
      for (const column of ['name', 'serial', 'asset_tag', 'system_uuid']) {
        await sql`create index ${sql.id(`ix_machines_${column}_trgm`)} on machines using gin (${sql.id(column)} gin_trgm_ops)`.execute(db);
      }
      await sql`create index ix_machine_macs_mac_trgm on machine_macs using gin (mac gin_trgm_ops)`.execute(db);
      return;
    }
    await sql`create table machine_search_rows (
      seq integer primary key,
      machine_id text not null unique,
      name text, serial text, asset_tag text, system_uuid text, macs text)`.execute(db);
    await sql`create virtual table machine_search using fts5(
      name, serial, asset_tag, system_uuid, macs,
      content = 'machine_search_rows', content_rowid = 'seq', tokenize = 'trigram')`.execute(db);
    const columns = 'name, serial, asset_tag, system_uuid, macs';
    const of = (row: string) => columns.split(', ').map((c) => `${row}.${c}`).join(', ');
    // The FTS5 table follows its content table (SQLite's external-content pattern).
    await sql.raw(`create trigger machine_search_rows_ai after insert on machine_search_rows begin
      insert into machine_search(rowid, ${columns}) values (new.seq, ${of('new')}); end`).execute(db);
    await sql.raw(`create trigger machine_search_rows_ad after delete on machine_search_rows begin
      insert into machine_search(machine_search, rowid, ${columns}) values ('delete', old.seq, ${of('old')}); end`).execute(db);
    await sql.raw(`create trigger machine_search_rows_au after update on machine_search_rows begin
      insert into machine_search(machine_search, rowid, ${columns}) values ('delete', old.seq, ${of('old')});
      insert into machine_search(rowid, ${columns}) values (new.seq, ${of('new')}); end`).execute(db);
    // The content table follows machines and machine_macs.
    const macsOf = (id: string) => `coalesce((select group_concat(mac, ' ') from machine_macs where machine_id = ${id}), '')`;
    await sql.raw(`create trigger machines_search_ai after insert on machines begin
      insert into machine_search_rows(machine_id, name, serial, asset_tag, system_uuid, macs)
        values (new.id, new.name, new.serial, new.asset_tag, new.system_uuid, ${macsOf('new.id')}); end`).execute(db);
    await sql.raw(`create trigger machines_search_au after update of name, serial, asset_tag, system_uuid on machines begin
      update machine_search_rows set name = new.name, serial = new.serial, asset_tag = new.asset_tag, system_uuid = new.system_uuid
        where machine_id = new.id; end`).execute(db);
    await sql.raw(`create trigger machines_search_ad after delete on machines begin
      delete from machine_search_rows where machine_id = old.id; end`).execute(db);
    for (const [event, row] of [['insert', 'new'], ['delete', 'old']] as const) {
      await sql.raw(`create trigger machine_macs_search_a${event[0]} after ${event} on machine_macs begin
        update machine_search_rows set macs = ${macsOf(`${row}.machine_id`)} where machine_id = ${row}.machine_id; end`).execute(db);
    }
    await sql.raw(`create trigger machine_macs_search_au after update on machine_macs begin
      update machine_search_rows set macs = ${macsOf('old.machine_id')} where machine_id = old.machine_id;
      update machine_search_rows set macs = ${macsOf('new.machine_id')} where machine_id = new.machine_id; end`).execute(db);
    await sql.raw(`insert into machine_search_rows(machine_id, name, serial, asset_tag, system_uuid, macs)
      select id, name, serial, asset_tag, system_uuid, ${macsOf('machines.id')} from machines`).execute(db);
  },
});
