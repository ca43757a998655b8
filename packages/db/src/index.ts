export { createPool } from './pool.js';
export type { Pool, PoolOptions } from './pool.js';
export { migrate, loadMigrations, SchemaTooNewError } from './migrate.js';
export type { Migration } from './migrate.js';
export { translatePgError } from './errors.js';
export { PgContainerStore } from './container-store.js';
export { PgApiKeyStore } from './api-key-store.js';
export { PgExpiryStore } from './expiry-store.js';
