import { describe, expect } from 'vitest';
import { test as it } from '@berth/testkit/fixtures';
import { createPool } from './pool.js';

const until = async (condition: () => boolean, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('createPool', () => {
  it('sets the application name and a statement timeout', async ({ database: db }) => {
    const pool = createPool(db.url, { applicationName: 'berth-pool-test' });
    try {
      const { rows } = await pool.query(
        `select current_setting('application_name') as app, current_setting('statement_timeout') as timeout`,
      );
      expect(rows[0]).toEqual({ app: 'berth-pool-test', timeout: '15s' });
    } finally {
      await pool.end();
    }
  });

  it('cancels statements that run past the timeout', async ({ database: db }) => {
    const pool = createPool(db.url, { statementTimeoutMs: 100 });
    try {
      await expect(pool.query('select pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await pool.end();
    }
  });

  it('survives an idle connection being killed, and reconnects', async ({ database: db }) => {
    const pool = createPool(db.url, { max: 1, applicationName: 'berth-idle-victim' });
    try {
      await pool.query('select 1');
      expect(pool.idleCount).toBe(1);

      // Without the pool's error listener this would be an uncaught 'error' event: a crash.
      await db.pool.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = 'berth-idle-victim'`,
      );
      await until(() => pool.idleCount === 0);

      const { rows } = await pool.query('select 42 as answer');
      expect(rows[0]).toEqual({ answer: 42 });
    } finally {
      await pool.end();
    }
  });

  it('survives a checked-out connection being killed between two queries (a Postgres restart)', async ({
    database: db,
  }) => {
    const pool = createPool(db.url, { max: 1, applicationName: 'berth-busy-victim' });
    try {
      const client = await pool.connect();
      await client.query('begin');
      // pg-pool has no listener on a client it has lent out: without ours, this is a crash.
      await db.pool.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = 'berth-busy-victim'`,
      );
      await new Promise((r) => setTimeout(r, 300));
      await expect(client.query('select 1')).rejects.toBeInstanceOf(Error);
      client.release(true);
      const { rows } = await pool.query('select 42 as answer');
      expect(rows[0]).toEqual({ answer: 42 });
    } finally {
      await pool.end();
    }
  });
});
