import type pg from 'pg';
import { systemClock, type Clock, type IdKind, type Page, type PageRequest } from '@berth/core';
import { translatePgError } from './errors.js';
import { keyset, toPage } from './keyset.js';

/** A pool or one client inside a transaction. */
type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/**
 * The one way the stores reach Postgres: every statement's error is translated at this edge
 * (unreachable → 503, unique violation → 409 with the pg error as `cause`), and a transaction is
 * begun, committed, rolled back and released in one place.
 */
export class Sql {
  constructor(
    private readonly target: Queryable,
    private readonly pool: pg.Pool | null = null,
  ) {}

  static of(pool: pg.Pool): Sql {
    return new Sql(pool, pool);
  }

  async query<R extends pg.QueryResultRow>(
    text: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.target.query<R>(text, params);
    } catch (error) {
      throw translatePgError(error);
    }
  }

  async rows<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await this.query<R>(text, params)).rows;
  }

  async one<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R | null> {
    return (await this.query<R>(text, params)).rows[0] ?? null;
  }

  /** Rows the statement changed. */
  async run(text: string, params: unknown[] = []): Promise<number> {
    return (await this.query(text, params)).rowCount ?? 0;
  }

  /**
   * Runs `work` in one transaction on one client: committed when it resolves, rolled back when it
   * throws (its error comes out as it was: a sandbox error inside stays a sandbox error).
   */
  async transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> {
    if (!this.pool) throw new Error('a transaction cannot be nested');
    const client = await this.pool.connect().catch((error: unknown) => {
      throw translatePgError(error);
    });
    const tx = new Sql(client);
    try {
      await tx.query('begin');
      const result = await work(tx);
      await tx.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** One page of a keyset list over (created_at, id); the `after` cursor and order come from `page`. */
  async listPage<R extends pg.QueryResultRow, T>(query: {
    from: string;
    kind: IdKind;
    /** column = value for each value that is not undefined (an absent filter). */
    equal?: Record<string, unknown>;
    /** Further conditions, whose parameters ($1…) are `params`. */
    where?: string[];
    params?: unknown[];
    page: PageRequest;
    map: (row: R) => T;
  }): Promise<Page<T>> {
    const params = [...(query.params ?? [])];
    const where = [...(query.where ?? [])];
    for (const [column, value] of Object.entries(query.equal ?? {})) {
      if (value === undefined) continue;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    }
    const { condition, tail } = keyset(query.kind, query.page, params);
    if (condition) where.push(condition);
    const rows = await this.rows<R>(
      `select * from ${query.from} ${where.length ? `where ${where.join(' and ')}` : ''} ${tail}`,
      params,
    );
    return toPage(rows, query.page.limit, query.map);
  }
}

/** A unique violation of `constraint`, as `Sql` reports it (translated, with pg's error as cause). */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  const cause = (error as { cause?: { code?: string; constraint?: string } } | null)?.cause;
  return cause?.code === '23505' && cause.constraint === constraint;
}

/** What every store is built from: the pool, reached through `Sql`, and the service's clock. */
export abstract class PgStore {
  protected readonly sql: Sql;

  constructor(
    pool: pg.Pool,
    protected readonly clock: Clock = systemClock,
  ) {
    this.sql = Sql.of(pool);
  }
}
