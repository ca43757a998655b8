import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { Sql } from './sql.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
// One lock for every runner, held per transaction: concurrent runners take turns.
const LOCK_KEY = 0x6265_7274; // "bert"

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      id: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: await readFile(`${dir}${file}`, 'utf8'),
    })),
  );
}

/** The database holds migrations this code doesn't know: a newer version has run against it. */
export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError';
}

/**
 * Applies numbered, forward-only migrations, each in its own transaction. Each transaction first
 * takes a transaction-level advisory lock and re-checks what is applied, so two runners at once
 * apply every migration exactly once.
 */
export async function migrate(
  pool: pg.Pool,
  options: { log?: (message: string) => void; migrations?: Migration[] } = {},
): Promise<number[]> {
  const migrations = options.migrations ?? (await loadMigrations());
  const known = new Set(migrations.map((m) => m.id));
  const applied: number[] = [];
  const sql = Sql.of(pool);
  for (const migration of migrations) {
    const ran = await sql.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await tx.query(`create table if not exists berth_migrations (
        id integer primary key, name text not null, applied_at timestamptz not null default now())`);
      const done = new Set(
        (await tx.rows<{ id: number }>('select id from berth_migrations')).map((r) => r.id),
      );
      const unknown = [...done].filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new SchemaTooNewError(
          `The database has migration(s) ${unknown.join(', ')} that this version does not know: it is newer than this code. Deploy the newer version.`,
        );
      }
      if (done.has(migration.id)) return false;
      await tx.query('insert into berth_migrations (id, name) values ($1, $2)', [
        migration.id,
        migration.name,
      ]);
      await tx.query(migration.sql);
      return true;
    });
    if (!ran) continue;
    applied.push(migration.id);
    options.log?.(`applied migration ${String(migration.id).padStart(4, '0')}_${migration.name}`);
  }
  return applied;
}
