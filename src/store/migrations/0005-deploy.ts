import type { Kysely } from 'kysely';
import type { MigrationFactory } from './index.js';

/** Images, template overrides, deploy state of machines. */
export const deploy: MigrationFactory = () => ({
  async up(_db: Kysely<any>) {
    // Filled in with the deployment tables.
  },
});
