import { describe, expect } from 'vitest';
import { aSandboxSpec } from './builders.js';
import { test } from './fixtures.js';

// What each test got, checked by the next one: fixtures are torn down after the test.
const seen: { databaseUrl?: string; instance?: string; sandboxId?: string } = {};

describe('fixtures', () => {
  test('database: a migrated database of its own', async ({ database }) => {
    const { rows } = await database.pool.query('select count(*)::int as n from berth_migrations');
    expect(rows[0].n).toBeGreaterThan(0);
    seen.databaseUrl = database.url;
  });

  test('database: dropped after the test', async ({ database }) => {
    expect(database.url).not.toBe(seen.databaseUrl);
    const name = new URL(seen.databaseUrl!).pathname.slice(1);
    const { rows } = await database.pool.query('select 1 from pg_database where datname = $1', [
      name,
    ]);
    expect(rows).toEqual([]);
  });

  test('emptyDatabase: no schema at all', async ({ emptyDatabase }) => {
    const { rows } = await emptyDatabase.pool.query(`select to_regclass('containers') as t`);
    expect(rows[0]).toEqual({ t: null });
  });

  test('sandboxes: labelled with an instance of their own', async ({ sandboxes }) => {
    const spec = aSandboxSpec();
    const id = spec.containerId;
    await sandboxes.runtime.create(spec);
    expect((await sandboxes.runtime.listManaged()).map((s) => s.containerId)).toEqual([id]);
    await sandboxes.runtime.remove(id);
    seen.instance = sandboxes.instance;
  });

  test('sandboxes: a new instance per test, seeing nothing of the last', async ({ sandboxes }) => {
    expect(sandboxes.instance).not.toBe(seen.instance);
    expect(await sandboxes.runtime.listManaged()).toEqual([]);
  });
});
