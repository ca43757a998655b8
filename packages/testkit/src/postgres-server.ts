import { GenericContainer, Wait } from 'testcontainers';
import pg from 'pg';
import { createPool, migrate } from '@berth/db';
import { postgresImage } from './postgres-image.js';

export interface PostgresServerOptions {
  /** User, password and first database (all one name, as the image's entrypoint makes them). */
  user: string;
  /** The database to migrate: the first one, or another created for it (a template to clone). */
  migratedDatabase: string;
  /** Server settings beyond the defaults (fsync and synchronous_commit off: the data is throwaway). */
  settings?: Record<string, string>;
}

export interface PostgresServer {
  /** A connection URL for `database` (default: the first one, where the user may create more). */
  url(database?: string): string;
  /**
   * The same database at the container's own address on its Docker network, as a service beside
   * it in compose reaches it: no userland port proxy (docker-proxy) in between. Null when this
   * host has no route to that network (an engine in a VM).
   */
  directUrl(database?: string): Promise<string | null>;
  /** Stops and removes the container (nothing else would: Ryuk is off). */
  stop(): Promise<void>;
}

async function waitForQuery(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/**
 * A throwaway Postgres (testcontainers, data on tmpfs, labelled as a test object) with one database
 * migrated to the current schema. The test run and the bench both start theirs here.
 */
export async function startPostgresServer(options: PostgresServerOptions): Promise<PostgresServer> {
  const { user, migratedDatabase } = options;
  const settings = { fsync: 'off', synchronous_commit: 'off', ...options.settings };
  const container = await new GenericContainer(postgresImage())
    .withEnvironment({ POSTGRES_USER: user, POSTGRES_PASSWORD: user, POSTGRES_DB: user })
    .withCommand(['postgres', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])])
    .withExposedPorts(5432)
    .withLabels({ 'org.berth.test': 'true' })
    .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
    .withWaitStrategy(Wait.forListeningPorts())
    .start();
  const base = `postgres://${user}:${user}@${container.getHost()}:${container.getMappedPort(5432)}`;
  const server: PostgresServer = {
    url: (database = user) => `${base}/${database}`,
    directUrl: async (database = user) => {
      const network = container.getNetworkNames()[0];
      const host = network ? container.getIpAddress(network) : '';
      if (!host) return null;
      const url = `postgres://${user}:${user}@${host}:5432/${database}`;
      // One try, two seconds: a host without a route to the bridge gets the mapped port.
      return waitForQuery(url, 2_000).then(
        () => url,
        () => null,
      );
    },
    stop: async () => {
      await container.stop({ remove: true, removeVolumes: true });
    },
  };
  try {
    // The port opens before the server accepts queries (the entrypoint restarts it once).
    await waitForQuery(server.url(), 60_000);
    if (migratedDatabase !== user) {
      const admin = new pg.Client({ connectionString: server.url() });
      await admin.connect();
      try {
        await admin.query(`create database ${migratedDatabase}`);
      } finally {
        await admin.end();
      }
    }
    const pool = createPool(server.url(migratedDatabase), { max: 1 });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }
    return server;
  } catch (error) {
    // Stop it if start-up fails half-way, or it would outlive the run.
    await server.stop().catch(() => {});
    throw error;
  }
}
