import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sandboxImage, startPostgresServer, testDocker } from '@berth/testkit';
import { loadConfig } from '../services/api/src/config.js';
import { main } from '../services/api/src/main.js';

const docker = testDocker.docker;

export interface Row {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

export interface BenchBerth {
  url: string;
  apiKey: string;
  instance: string;
  metricsToken: string;
  pool: pg.Pool;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** The Docker name of a container's sandbox (a warm-pool one keeps its slot's name). */
  sandboxOf(containerId: string): Promise<string>;
  close(): Promise<void>;
}

/** BERTH_POOL_SIZES of the bench service: per network policy, at 1g. */
export const POOL_SIZE = 16;
export const ALLOWLIST_POOL_SIZE = 4;

/** One Postgres (testcontainers) and the real service on a free port, for a whole bench run. */
export async function startBenchBerth(env: Record<string, string> = {}): Promise<BenchBerth> {
  const postgres = await startPostgresServer({ user: 'bench', migratedDatabase: 'bench' });
  const databaseUrl = postgres.url();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const apiKey = `sk-bench-${randomBytes(16).toString('hex')}`;
  const instance = `bench${randomBytes(4).toString('hex')}`;
  const metricsToken = `bench-metrics-${randomBytes(16).toString('hex')}`;
  const app = await main(
    loadConfig({
      DATABASE_URL: databaseUrl,
      PORT: '0',
      BERTH_INSTANCE: instance,
      BERTH_BOOTSTRAP_API_KEY: apiKey,
      BERTH_LOG_LEVEL: 'silent',
      BERTH_SANDBOX_IMAGE: sandboxImage(),
      BERTH_MAX_CONTAINERS_PER_PROJECT: '100000',
      // A pool deep enough for the load profile's 16 agents, and a small allowlist one (the
      // pool-allowlist part); refilled as fast as Docker allows.
      BERTH_POOL_SIZES: `1g=${POOL_SIZE},1g/allowlist=${ALLOWLIST_POOL_SIZE}`,
      BERTH_POOL_FILL_INTERVAL_MS: '0',
      BERTH_METRICS_TOKEN: metricsToken,
      ...env,
    }),
  );
  const url = app.url ?? '';
  return {
    url,
    apiKey,
    instance,
    metricsToken,
    pool,
    api: (path, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          ...(init.headers ?? {}),
        },
      }),
    async sandboxOf(containerId) {
      const { rows } = await pool.query<{ pool_slot: string | null }>(
        'select pool_slot from containers where id = $1',
        [containerId],
      );
      return `berth-${rows[0]?.pool_slot ?? containerId}`;
    },
    async close() {
      await app.close();
      // Warm-pool sandboxes outlive requests: remove everything this instance left.
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`org.berth.instance=${instance}`] },
      });
      await Promise.all(
        left.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
      await pool.end();
      await postgres.stop();
    },
  };
}
