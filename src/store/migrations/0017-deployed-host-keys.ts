import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * The SSH host keys of a machine's installed OS (a JSON list of `type base64` lines), as the
 * automation that installed it gave them when it left the installer: clients pin them instead
 * of trusting the first connection.
 */
export const deployedHostKeys: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('machines').addColumn('deployed_host_keys', 'text').execute();
  },
});
