import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sandboxImage, startPostgresServer } from '@berth/testkit';
import { loadConfig } from '../services/api/src/config.js';
import { main } from '../services/api/src/main.js';

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
  pool: pg.Pool;
  api(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** One Postgres (testcontainers) and the real service on a free port, for a whole bench run. */
export async function startBenchBerth(env: Record<string, string> = {}): Promise<BenchBerth> {
  const postgres = await startPostgresServer({ user: 'bench', migratedDatabase: 'bench' });
  const databaseUrl = postgres.url();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const apiKey = `sk-bench-${randomBytes(16).toString('hex')}`;
  const instance = `bench${randomBytes(4).toString('hex')}`;
  const app = await main(
    loadConfig({
      DATABASE_URL: databaseUrl,
      PORT: '0',
      BERTH_INSTANCE: instance,
      BERTH_BOOTSTRAP_API_KEY: apiKey,
      BERTH_LOG_LEVEL: 'silent',
      BERTH_SANDBOX_IMAGE: sandboxImage(),
      BERTH_MAX_CONTAINERS_PER_PROJECT: '100000',
      ...env,
    }),
  );
  const url = app.url ?? '';
  return {
    url,
    apiKey,
    instance,
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
    async close() {
      await app.close();
      await pool.end();
      await postgres.stop();
    },
  };
}
