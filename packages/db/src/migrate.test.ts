import { describe, expect } from 'vitest';
import { test as it } from '@berth/testkit/fixtures';
import { createPool, type Pool } from './pool.js';
import { loadMigrations, migrate, SchemaTooNewError } from './migrate.js';

const recorded = async (pool: Pool) =>
  (
    await pool.query<{ id: number; name: string }>(
      'select id, name from berth_migrations order by id',
    )
  ).rows;

/** Tables, columns and indexes: enough to tell two schemas apart. */
async function schemaOf(pool: Pool): Promise<string[]> {
  const columns = await pool.query<{ line: string }>(
    `select table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
              || coalesce(' default ' || column_default, '') as line
       from information_schema.columns where table_schema = 'public'`,
  );
  const indexes = await pool.query<{ line: string }>(
    `select indexdef as line from pg_indexes where schemaname = 'public'`,
  );
  const constraints = await pool.query<{ line: string }>(
    `select conrelid::regclass || ' ' || pg_get_constraintdef(oid) as line
       from pg_constraint where connamespace = 'public'::regnamespace`,
  );
  return [...columns.rows, ...indexes.rows, ...constraints.rows].map((r) => r.line).sort();
}

describe('loadMigrations', () => {
  it('finds numbered files, in order, numbered from 1 without gaps', async () => {
    const migrations = await loadMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    expect(migrations.map((m) => m.id)).toEqual(migrations.map((_, i) => i + 1));
    expect(migrations[0]).toMatchObject({ id: 1, name: 'init' });
  });
});

describe('migrate', () => {
  it('applies every migration to an empty database once, and nothing the second time', async ({
    emptyDatabase: db,
  }) => {
    const migrations = await loadMigrations();
    const logged: string[] = [];

    const applied = await migrate(db.pool, { log: (m) => logged.push(m) });

    expect(applied).toEqual(migrations.map((m) => m.id));
    expect(logged).toEqual(
      migrations.map((m) => `applied migration ${String(m.id).padStart(4, '0')}_${m.name}`),
    );
    expect(await recorded(db.pool)).toEqual(migrations.map(({ id, name }) => ({ id, name })));
    expect(await migrate(db.pool, { log: (m) => logged.push(m) })).toEqual([]);
    expect(logged).toHaveLength(migrations.length);
  });

  it('lets several runners race on a fresh database: all resolve, each migration applied once', async ({
    emptyDatabase: db,
    database: reference,
  }) => {
    const migrations = await loadMigrations();
    // Separate pools: separate sessions, as separate replicas starting at once would have.
    const pools = Array.from({ length: 4 }, () => createPool(db.url, { max: 1 }));
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool)));

      expect(results.flat().sort((a, b) => a - b)).toEqual(migrations.map((m) => m.id));
      expect(await recorded(db.pool)).toEqual(migrations.map(({ id, name }) => ({ id, name })));
      expect(await schemaOf(db.pool)).toEqual(await schemaOf(reference.pool));
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('builds the schema the stores rely on', async ({ emptyDatabase: db }) => {
    await migrate(db.pool);
    const schema = (await schemaOf(db.pool)).join('\n');

    for (const table of ['projects', 'api_keys', 'containers', 'berth_migrations']) {
      expect(schema).toContain(`${table}.id `);
    }
    expect(schema).toContain(
      "CREATE INDEX containers_page ON public.containers USING btree (project_id, created_at, id) WHERE (status = ANY (ARRAY['running'::text, 'expired'::text, 'failed'::text]))",
    );
    expect(schema).toContain(
      'CREATE INDEX containers_name_page ON public.containers USING btree (project_id, name, created_at, id) WHERE',
    );
    expect(schema).toContain('containers.created_at bigint NO');
    expect(schema).toContain('containers.network_policy jsonb NO');
    expect(schema).toContain(
      'api_keys FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE',
    );
    expect(schema).toContain('api_keys UNIQUE (hash)');
  });

  it('refuses a database that has migrations this code does not know', async ({ database: db }) => {
    await db.pool.query(`insert into berth_migrations (id, name) values (9999, 'from_the_future')`);

    const run = migrate(db.pool);

    await expect(run).rejects.toBeInstanceOf(SchemaTooNewError);
    await expect(run).rejects.toThrow(/9999.*newer than this code/);
  });

  it('rolls a failing migration back whole, recording nothing', async ({ emptyDatabase: db }) => {
    const [init] = await loadMigrations();
    const broken = { id: 2, name: 'broken', sql: 'create table half_done (id int); select 1 / 0;' };

    await expect(migrate(db.pool, { migrations: [init!, broken] })).rejects.toThrow(
      /division by zero/,
    );

    expect((await recorded(db.pool)).map((r) => r.id)).toEqual([1]);
    const { rows } = await db.pool.query(`select to_regclass('half_done') as t`);
    expect(rows[0]).toEqual({ t: null });
  });
});
