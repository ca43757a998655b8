import pg from 'pg';

export type Pool = pg.Pool;

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  /** Milliseconds a statement may run before Postgres cancels it. */
  statementTimeoutMs?: number;
}

// bigint (int8) columns hold unix seconds here, well inside Number's safe range.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'berth',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    options: `-c statement_timeout=${options.statementTimeoutMs ?? 15_000}`,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // Nor may a checked-out one: pg-pool takes its own listener off a client while it is lent out,
  // and Postgres can end the connection between two queries of a transaction (a restart). The
  // query in flight fails and is answered 503; the 'error' event itself has nothing to add.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}
