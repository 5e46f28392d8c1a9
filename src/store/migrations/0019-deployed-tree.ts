import type { Kysely } from 'kysely';
import type { MigrationFactory } from './factory.js';

/**
 * The tree a machine runs (eDeploy's role and version): set when a tree deploy's installed
 * system reports in, forgotten with the deployment.
 */
export const deployedTree: MigrationFactory = () => ({
  async up(db: Kysely<any>) {
    await db.schema.alterTable('machines').addColumn('deployed_role', 'text').execute();
    await db.schema.alterTable('machines').addColumn('deployed_version', 'text').execute();
  },
});
