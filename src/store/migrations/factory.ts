import type { Migration } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * One migration, built for the dialect it runs on. Its own file so that each migration names
 * the type without importing the list (index.ts) that imports it.
 */
export type MigrationFactory = (dialect: Dialect) => Migration;
