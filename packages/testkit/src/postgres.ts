import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, type Pool } from '@berth/db';

export interface TestDatabase {
  url: string;
  pool: Pool;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TestDatabaseOptions {
  /** false: an empty database (no schema), for testing the migration runner itself. */
  migrated?: boolean;
}

/** A database of its own, cloned from the migrated template; dropped on dispose. */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const template = options.migrated === false ? 'template0' : 'berth_template';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), { max: 5, applicationName: 'berth-test' });
  return {
    url: url.toString(),
    pool,
    async [Symbol.asyncDispose]() {
      await pool.end();
      const drop = new pg.Client({ connectionString: adminUrl });
      await drop.connect();
      try {
        await drop.query(`drop database if exists ${name} with (force)`);
      } finally {
        await drop.end();
      }
    },
  };
}
