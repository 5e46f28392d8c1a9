import type { MigrationProvider } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { MigrationFactory } from './factory.js';
import { foundation } from './0001-foundation.js';
import { boot } from './0002-boot.js';
import { providers } from './0003-providers.js';
import { matching } from './0004-matching.js';
import { deploy } from './0005-deploy.js';
import { search } from './0006-search.js';
import { runClaims } from './0007-run-claims.js';
import { applianceHealth } from './0008-appliance-health.js';
import { metrics } from './0009-metrics.js';
import { bootMethod } from './0010-boot-method.js';
import { scripts } from './0011-scripts.js';
import { eventLog } from './0012-event-log.js';
import { powerFilter } from './0013-power-filter.js';
import { webhooks } from './0014-webhooks.js';
import { bootAddress } from './0015-boot-address.js';
import { substringSearch } from './0016-substring-search.js';
import { deployedHostKeys } from './0017-deployed-host-keys.js';
import { tagOrder } from './0018-tag-order.js';
import { deployedTree } from './0019-deployed-tree.js';
import { siteCaches } from './0020-site-caches.js';
import { treeRolls } from './0021-tree-rolls.js';
import { rollDeadlines } from './0022-roll-deadlines.js';
import { profilesVersion } from './0023-profiles-version.js';
import { imageLayout } from './0024-image-layout.js';

/**
 * The one migration history, applied in name order on both SQLite and PostgreSQL.
 * Migrations are code (not files found at run time) so that the bundled controller
 * carries them. Never edit a released migration; add the next one.
 */
const MIGRATIONS: [string, MigrationFactory][] = [
  ['0001-foundation', foundation],
  ['0002-boot', boot],
  ['0003-providers', providers],
  ['0004-matching', matching],
  ['0005-deploy', deploy],
  ['0006-search', search],
  ['0007-run-claims', runClaims],
  ['0008-appliance-health', applianceHealth],
  ['0009-metrics', metrics],
  ['0010-boot-method', bootMethod],
  ['0011-scripts', scripts],
  ['0012-event-log', eventLog],
  ['0013-power-filter', powerFilter],
  ['0014-webhooks', webhooks],
  ['0015-boot-address', bootAddress],
  ['0016-substring-search', substringSearch],
  ['0017-deployed-host-keys', deployedHostKeys],
  ['0018-tag-order', tagOrder],
  ['0019-deployed-tree', deployedTree],
  ['0020-site-caches', siteCaches],
  ['0021-tree-rolls', treeRolls],
  ['0022-roll-deadlines', rollDeadlines],
  ['0023-profiles-version', profilesVersion],
  ['0024-image-layout', imageLayout],
];

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      return Object.fromEntries(MIGRATIONS.map(([name, make]) => [name, make(dialect)]));
    },
  };
}
