/**
 * The database engines Plinth runs on. Its own file so that the migrations, which the store
 * imports, can name it without importing the store back.
 */
export type Dialect = 'sqlite' | 'postgres';
