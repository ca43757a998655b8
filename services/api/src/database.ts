import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, migrate, type Pool } from '@berth/db';
import { ensureDevPostgres, type DockerClient } from '@berth/sandbox-docker';
import type { Config } from './config.js';

/**
 * The configured database, or (development) the local Postgres container this starts or reuses;
 * connected with retries while a just-started Postgres comes up, and migrated.
 */
export async function openDatabase(
  config: Config,
  options: {
    applicationName: string;
    /** For the local development Postgres, when no DATABASE_URL is set. */
    docker: DockerClient;
    max?: number;
    log?: (message: string) => void;
  },
): Promise<Pool> {
  const log = options.log ?? (() => {});
  const url =
    config.DATABASE_URL ??
    (await ensureDevPostgres({
      client: options.docker,
      image: config.BERTH_POSTGRES_IMAGE,
      name: config.BERTH_DEV_POSTGRES_NAME,
      log,
    }));
  const pool = createPool(url, {
    max: options.max ?? config.DATABASE_POOL_MAX,
    applicationName: options.applicationName,
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await pool.query('select 1');
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await pool.end();
        throw error;
      }
      log(`waiting for Postgres: ${(error as Error).message}`);
      await sleep(500);
    }
  }
  await migrate(pool, { log });
  return pool;
}
