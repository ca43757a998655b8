import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import {
  SandboxPool,
  systemClock,
  type EgressController,
  type SandboxPoolRuntime,
} from '@berth/core';
import { PgPoolStore, type Pool } from '@berth/db';
import type { Config } from './config.js';
import { parsePoolSizes, poolEntries } from './pool-sizes.js';
import type { Metrics } from './metrics.js';

export interface WarmPool {
  pool: SandboxPool;
  store: PgPoolStore;
  start(): void;
  stop(): Promise<void>;
}

/**
 * The warm pool and its metrics; its filler runs only where requests are served. Allowlist pools
 * need this process's proxy (`egress`, serving the directory root `egressScope`); without it they
 * are left empty.
 */
export function createWarmPool(
  config: Config,
  db: Pool,
  runtime: SandboxPoolRuntime,
  metrics: Metrics,
  logger: Logger,
  egress?: { controller: EgressController; scope: string },
): WarmPool {
  const store = new PgPoolStore(db);
  const sizes = parsePoolSizes(config.BERTH_POOL_SIZES);
  const pool = new SandboxPool({
    store,
    runtime,
    clock: systemClock,
    sizes,
    ...(egress ? { egress: egress.controller, egressScope: egress.scope } : {}),
    fillIntervalMs: config.BERTH_POOL_FILL_INTERVAL_MS,
    onClaim: (limit, network) => metrics.poolClaims.inc({ memory_limit: limit, network }),
    onMiss: (limit, network) => metrics.poolMisses.inc({ memory_limit: limit, network }),
    onFillError: (err) =>
      logger.warn({ err }, 'creating a warm-pool sandbox failed; the filler retries'),
  });
  // Read at scrape time from Postgres: every replica's pool sandboxes, not only this process's.
  // Both gauges collect at once during a scrape and share one read.
  let reading: ReturnType<typeof store.list> | null = null;
  const slots = () =>
    (reading ??= store
      .list()
      .catch(() => [])
      .finally(() => {
        reading = null;
      }));
  new Gauge({
    name: 'berth_pool_sandboxes',
    help: 'Warm-pool sandboxes, by memory limit, network policy and state (idle: claimable; filling: starting).',
    labelNames: ['memory_limit', 'network', 'state'] as const,
    registers: [metrics.registry],
    async collect() {
      const all = await slots();
      this.reset();
      for (const [network, limit] of poolEntries(sizes))
        for (const state of ['idle', 'filling'] as const)
          this.set({ memory_limit: limit, network, state }, 0);
      for (const s of all)
        this.inc({ memory_limit: s.memoryLimit, network: s.network, state: s.state });
    },
  });
  new Gauge({
    name: 'berth_pool_committed_memory_bytes',
    help: 'Memory limits of every warm-pool sandbox: host memory committed to the pool, on top of the containers.',
    registers: [metrics.registry],
    async collect() {
      this.set(pool.committedBytes(await slots()));
    },
  });
  const enabled = poolEntries(sizes).length > 0;
  return {
    pool,
    store,
    start: () => {
      if (enabled) pool.start();
    },
    stop: () => pool.stop(),
  };
}
