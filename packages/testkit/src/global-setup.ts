import type { TestProject } from 'vitest/node';
import { startPostgresServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

/**
 * One Postgres for the whole run, with a migrated template database; each test clones its own
 * database from the template in milliseconds (see postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgresServer({
    user: 'berth',
    migratedDatabase: 'berth_template',
    settings: { full_page_writes: 'off', max_connections: '400' },
  });
  project.provide('pgAdminUrl', server.url());
  return () => server.stop();
}
