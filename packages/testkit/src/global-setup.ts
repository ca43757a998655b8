import type { TestProject } from 'vitest/node';
import { GenericContainer, Wait } from 'testcontainers';
import pg from 'pg';
import { createPool, migrate } from '@berth/db';
import { postgresImage } from './postgres-image.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
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
 * One Postgres for the whole run, with a migrated template database; each test clones its own
 * database from the template in milliseconds (see postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const container = await new GenericContainer(postgresImage())
    .withEnvironment({ POSTGRES_USER: 'berth', POSTGRES_PASSWORD: 'berth', POSTGRES_DB: 'berth' })
    .withCommand([
      'postgres',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=400',
    ])
    .withExposedPorts(5432)
    .withLabels({ 'org.berth.test': 'true' })
    .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
    .withWaitStrategy(Wait.forListeningPorts())
    .start();
  // Ryuk is off, so nothing else would remove the container: stop it if setup fails half-way.
  const teardown = async () => {
    await container.stop({ remove: true, removeVolumes: true });
  };
  try {
    const base = `postgres://berth:berth@${container.getHost()}:${container.getMappedPort(5432)}`;
    // The port opens before the server accepts queries (the entrypoint restarts it once).
    await waitForQuery(`${base}/berth`, 60_000);

    const admin = new pg.Client({ connectionString: `${base}/berth` });
    await admin.connect();
    try {
      await admin.query('create database berth_template');
    } finally {
      await admin.end();
    }
    const pool = createPool(`${base}/berth_template`, { max: 1 });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }

    project.provide('pgAdminUrl', `${base}/berth`);
    return teardown;
  } catch (error) {
    await teardown().catch(() => {});
    throw error;
  }
}
