import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * Site caches: a remote site's manager that serves its machines' files reports its cache (the
 * URL machines reach it at, its figures) apart from its job claims; the controller names the
 * cache to a site's machines only while those reports keep coming.
 */
export const siteCaches: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('managers').addColumn('cache_url', 'text').execute();
    await db.schema.alterTable('managers').addColumn('cache_report', 'text').execute();
    await db.schema.alterTable('managers').addColumn('cache_seen', 'text').execute();
  },
});
