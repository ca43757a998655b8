import { createHash, randomBytes } from 'node:crypto';
import { describe, expect } from 'vitest';
import { BerthError } from '@berth/core';
import { test } from '@berth/testkit/fixtures';
import { PgApiKeyStore } from './api-key-store.js';
import { createPool } from './pool.js';

const hash = () => createHash('sha256').update(randomBytes(32)).digest();

/** Each test: its own database, and the store on it. */
const it = test.extend('keys', ({ database }) => new PgApiKeyStore(database.pool));

describe('ensureProject', () => {
  it('creates a project once and returns the same id after', async ({ keys }) => {
    const id = await keys.ensureProject('default');
    expect(id).toMatch(/^proj_[0-9a-f]{24}$/);
    expect(await keys.ensureProject('default')).toBe(id);
    expect(await keys.ensureProject('other')).not.toBe(id);
  });

  it('is race-safe: concurrent calls for one name agree on one project', async ({
    database: db,
  }) => {
    const pool = createPool(db.url, { max: 20 });
    try {
      const racing = new PgApiKeyStore(pool);
      const ids = await Promise.all(Array.from({ length: 20 }, () => racing.ensureProject('p')));
      expect(new Set(ids).size).toBe(1);
    } finally {
      await pool.end();
    }
    const { rows } = await db.pool.query('select count(*)::int as n from projects');
    expect(rows[0]).toEqual({ n: 1 });
  });
});

describe('keys', () => {
  it('creates, finds by hash, lists and revokes', async ({ keys }) => {
    const p1 = await keys.ensureProject('one');
    const p2 = await keys.ensureProject('two');
    const h1 = hash();
    const h2 = hash();

    const k1 = await keys.create({ projectId: p1, name: 'ci', prefix: 'sk-berth-ab', hash: h1 });
    const k2 = await keys.create({ projectId: p2, name: 'dev', prefix: 'sk-berth-cd', hash: h2 });

    expect(k1).toEqual({
      id: expect.stringMatching(/^key_[0-9a-f]{24}$/),
      projectId: p1,
      name: 'ci',
      prefix: 'sk-berth-ab',
      createdAt: expect.any(Date),
      revokedAt: null,
    });
    expect(await keys.findProjectByHash(h1)).toBe(p1);
    expect(await keys.findProjectByHash(h2)).toBe(p2);
    expect(await keys.findProjectByHash(hash())).toBeNull();
    expect((await keys.list()).map((k) => k.id).sort()).toEqual([k1.id, k2.id].sort());
    expect(await keys.list(p2)).toEqual([k2]);

    expect(await keys.revoke(k1.id)).toBe(true);
    expect(await keys.revoke(k1.id)).toBe(false);
    expect(await keys.revoke('key_000000000000000000000000')).toBe(false);
    expect(await keys.findProjectByHash(h1)).toBeNull();
    expect((await keys.list(p1))[0]?.revokedAt).toBeInstanceOf(Date);
  });

  it('refuses a second key with the same hash as a conflict', async ({ keys }) => {
    const p = await keys.ensureProject('p');
    const h = hash();
    await keys.create({ projectId: p, name: 'a', prefix: 'x', hash: h });

    const error = await keys
      .create({ projectId: p, name: 'b', prefix: 'y', hash: h })
      .catch((e) => e);

    expect(error).toBeInstanceOf(BerthError);
    expect(error).toMatchObject({ status: 409 });
    expect((error as Error).cause).toMatchObject({ code: '23505' });
  });

  it('goes with its project: deleting a project deletes its keys', async ({
    database: db,
    keys,
  }) => {
    const p = await keys.ensureProject('gone');
    const h = hash();
    await keys.create({ projectId: p, name: 'a', prefix: 'x', hash: h });

    await db.pool.query('delete from projects where id = $1', [p]);

    expect(await keys.findProjectByHash(h)).toBeNull();
    expect(await keys.list()).toEqual([]);
  });
});
