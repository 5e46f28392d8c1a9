import type { Kysely } from 'kysely';
import type { MigrationFactory } from './index.js';

/** Profiles, pools (eDeploy's CMDB) and pool entries; what each machine matched. */
export const matching: MigrationFactory = () => ({
  async up(_db: Kysely<any>) {
    // Filled in with the matching tables.
  },
});
