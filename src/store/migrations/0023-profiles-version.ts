import { sql, type Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/** The columns of a profile that matching compiles; `quota` (the allocation counter) is not one. */
const PROFILE_DEFINITION = 'name, position, spec, spec_source, pool_id, release_returns_entry, deploy, description';

/**
 * A version of the profile and pool definitions, for the controller's cache of compiled
 * profiles (profiles/profile-cache.ts): one row, bumped by triggers on every insert, delete
 * and update of a definition, so no writer has to remember it and a change made through any
 * controller is seen by every other at its next match. A quota taken or given back (an update
 * of `quota` alone, at every allocation) does not bump it: quotas are read in each match.
 */
export const profilesVersion: MigrationFactory = (dialect) => ({
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('profiles_version')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'integer', (c) => c.notNull())
      .execute();
    await db.insertInto('profiles_version').values({ id: 1, version: 1 }).execute();
    const bump = 'update profiles_version set version = version + 1';
    const events: [string, string][] = [
      ['profiles', `insert or delete or update of ${PROFILE_DEFINITION}`],
      ['pools', 'insert or delete or update'],
    ];
    if (dialect === 'postgres') {
      await sql.raw(`create function bump_profiles_version() returns trigger language plpgsql as $$ begin ${bump}; return null; end $$`).execute(db);
      for (const [table, on] of events) {
        await sql.raw(`create trigger ${table}_version after ${on} on ${table} for each statement execute function bump_profiles_version()`).execute(db);
      }
      return;
    }
    // SQLite has row triggers only, one event each.
    for (const [table, on] of events) {
      for (const event of on.split(' or ')) {
        const name = `${table}_version_${event.split(' ')[0]}`;
        await sql.raw(`create trigger ${name} after ${event} on ${table} begin ${bump}; end`).execute(db);
      }
    }
  },
});
