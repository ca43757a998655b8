import { describe, expect } from 'vitest';
import { BerthError, NotFoundError, UnavailableError } from '@berth/core';
import { test as it } from '@berth/testkit/fixtures';
import { translatePgError } from './errors.js';

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('translatePgError', () => {
  it.each([
    ['ECONNREFUSED'],
    ['ENOTFOUND'],
    ['ETIMEDOUT'],
    ['ECONNRESET'],
    ['57P01'], // admin_shutdown
    ['57P02'], // crash_shutdown
    ['57P03'], // cannot_connect_now
    ['53300'], // too_many_connections
    ['08006'], // connection_failure
    ['08001'],
  ])('%s: the database is unavailable', (code) => {
    const cause = pgError(code);
    const error = translatePgError(cause);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ status: 503, retryAfter: 2 });
    expect((error as Error).cause).toBe(cause);
  });

  it.each([
    ['Connection terminated unexpectedly'],
    ['Connection terminated due to connection timeout'],
    ['timeout exceeded when trying to connect'],
  ])('"%s" (no code): unavailable', (message) => {
    expect(translatePgError(new Error(message))).toBeInstanceOf(UnavailableError);
  });

  it('a unique violation is a conflict', () => {
    const cause = pgError('23505', 'duplicate key value violates unique constraint');
    const error = translatePgError(cause);
    expect(error).toBeInstanceOf(BerthError);
    expect(error).toMatchObject({ status: 409, type: 'invalid_request_error' });
    expect((error as Error).cause).toBe(cause);
  });

  it('anything else stays as it was: a bug, not a client error', () => {
    const syntax = pgError('42601');
    const plain = new TypeError('nope');
    const berth = new NotFoundError('No such container.');
    expect(translatePgError(syntax)).toBe(syntax);
    expect(translatePgError(plain)).toBe(plain);
    expect(translatePgError(berth)).toBe(berth);
    expect(translatePgError('a string')).toBe('a string');
    expect(translatePgError(undefined)).toBe(undefined);
  });

  it("a backend terminated mid-query (pg's real error) is unavailable", async ({
    database: db,
  }) => {
    const client = await db.pool.connect();
    client.on('error', () => {}); // the terminated connection reports here too
    try {
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      const sleeping = client.query('select pg_sleep(30)').catch((e: unknown) => e);
      await db.pool.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      const error = await sleeping;
      expect(error).toMatchObject({ code: '57P01' });
      expect(translatePgError(error)).toBeInstanceOf(UnavailableError);
    } finally {
      client.release(true);
    }
  });
});
