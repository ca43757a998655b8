import { timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds, for calls from milliseconds to minutes (creates, execs, transfers). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds from a deadline to the removal: ticks are seconds apart, a backlog is minutes. */
const LAG_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600];

/** Reads at scrape time (gauges); each has its own deadline and may fail without failing a scrape. */
export interface MetricsProbes {
  /** Containers by status, and running rows past their deadline (the reaper's backlog). */
  containers?: () => Promise<{ byStatus: Record<string, number>; backlog: number }>;
  /** Resolves when the dependency answers. */
  dependencies?: Record<string, () => Promise<void>>;
}

const PROBE_DEADLINE_MS = 2_000;
const within = <T>(p: Promise<T>, ms = PROBE_DEADLINE_MS): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`probe timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
};
import { buildInfo } from './build-info.js';

/**
 * The service's metrics, in a registry of its own (never prom-client's global one), built once in
 * the composition root and handed to whoever counts. Names are under `berth_`; labels stay
 * low-cardinality (never a container id or a project). docs/metrics.md lists each one.
 */
export class Metrics {
  readonly registry = new Registry();
  #probes: MetricsProbes = {};
  #containersRead: {
    at: number;
    value: ReturnType<NonNullable<MetricsProbes['containers']>>;
  } | null = null;
  /** One read serves both gauges of a scrape. */
  #readContainers() {
    const read = this.#probes.containers;
    if (!read) return null;
    const now = Date.now();
    if (!this.#containersRead || now - this.#containersRead.at > 1_000)
      this.#containersRead = { at: now, value: within(read()) };
    return this.#containersRead.value;
  }
  readonly sandboxesUnresponsive = new Counter({
    name: 'berth_sandboxes_unresponsive_total',
    help: 'Sandboxes found wedged (a Docker call past its deadline while the engine answered) and marked failed.',
    registers: [this.registry],
  });
  readonly execs = new Counter({
    name: 'berth_execs_total',
    help: 'Execs finished, by outcome: exit, timeout, oom.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly execDuration = new Histogram({
    name: 'berth_exec_duration_seconds',
    help: 'Wall time of finished execs, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly sessionRuns = new Counter({
    name: 'berth_session_runs_total',
    help: 'Session runs finished, by outcome: ok, error, interrupted, restarted, died.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly archiveFailures = new Counter({
    name: 'berth_archive_failures_total',
    help: 'Archives of an expiring container (whole, or one file) that failed; expiry went on.',
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'berth_reconcile_errors_total',
    help: 'Sandboxes the reconciler could not handle in one run (failed or past its per-item deadline).',
    registers: [this.registry],
  });
  readonly reconcileActions = new Counter({
    name: 'berth_reconcile_actions_total',
    help: 'What reconciliation did, by action: orphan_removed, abandoned_finished, marked_failed.',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  readonly reconcileRuns = new Counter({
    name: 'berth_reconcile_runs_total',
    help: 'Reconcile runs, by outcome: ok, error.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly creates = new Counter({
    name: 'berth_container_creates_total',
    help: 'Container creates, by outcome: created, rejected (a 4xx: quota, bad input), error.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly createDuration = new Histogram({
    name: 'berth_container_create_duration_seconds',
    help: 'Time to create a container (row, sandbox, seeded files), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly deletes = new Counter({
    name: 'berth_container_deletes_total',
    help: 'Containers deleted through the API.',
    registers: [this.registry],
  });
  readonly expiries = new Counter({
    name: 'berth_container_expiries_total',
    help: 'Expired containers the reaper handled, by outcome: removed, error (retried next tick).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'berth_container_failures_total',
    help: 'Containers marked failed, by reason: oom, stopped, vanished, unresponsive.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly containers = new Gauge({
    name: 'berth_containers',
    help: 'Containers by status (running past its deadline counts as expired), read at scrape.',
    labelNames: ['status'] as const,
    registers: [this.registry],
    collect: async () => {
      const read = this.#readContainers();
      if (!read) return;
      try {
        const { byStatus } = await read;
        this.containers.reset();
        for (const [status, n] of Object.entries(byStatus)) this.containers.set({ status }, n);
      } catch {
        // Postgres not answering shows in berth_up; a stale count is worse than none.
        this.containers.reset();
      }
    },
  });
  readonly transferDuration = new Histogram({
    name: 'berth_file_transfer_duration_seconds',
    help: 'Duration of file uploads and downloads (Files API and container files), by direction.',
    labelNames: ['direction'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly transferBytes = new Counter({
    name: 'berth_file_transfer_bytes_total',
    help: 'Bytes of file bodies received (upload) and sent (download).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly reaperTicks = new Counter({
    name: 'berth_reaper_ticks_total',
    help: 'Reaper ticks, by outcome: ok, error.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly reaperTickDuration = new Histogram({
    name: 'berth_reaper_tick_duration_seconds',
    help: 'Duration of one reaper tick.',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly reaped = new Counter({
    name: 'berth_reaper_reaped_total',
    help: 'Containers the reaper expired (sandbox removed, row expired).',
    registers: [this.registry],
  });
  readonly reaperLag = new Histogram({
    name: 'berth_reaper_lag_seconds',
    help: 'Time from a container deadline to the removal of its sandbox.',
    buckets: LAG_BUCKETS,
    registers: [this.registry],
  });
  readonly reaperBacklog = new Gauge({
    name: 'berth_reaper_backlog',
    help: 'Running containers past their deadline, not yet reaped, read at scrape.',
    registers: [this.registry],
    collect: async () => {
      const read = this.#readContainers();
      if (!read) return;
      try {
        this.reaperBacklog.set((await read).backlog);
      } catch {
        this.reaperBacklog.reset();
      }
    },
  });
  readonly eventsPurged = new Counter({
    name: 'berth_events_purged_total',
    help: 'Lifecycle events deleted past BERTH_EVENT_RETENTION_HOURS.',
    registers: [this.registry],
  });
  readonly eventErrors = new Counter({
    name: 'berth_event_write_errors_total',
    help: 'Lifecycle events that could not be written to Postgres (logged and dropped).',
    registers: [this.registry],
  });
  readonly egressDecisions = new Counter({
    name: 'berth_egress_decisions_total',
    help: 'Egress proxy decisions, by result (allowed, denied) and reason category.',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });
  readonly egressBytes = new Counter({
    name: 'berth_egress_bytes_total',
    help: 'Bytes through the egress proxy, by direction: up (sandbox to upstream), down.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'berth_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'HTTP request duration, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly up = new Gauge({
    name: 'berth_up',
    help: 'Whether a dependency answers (1) or not (0), by dependency: postgres, docker; read at scrape.',
    labelNames: ['dependency'] as const,
    registers: [this.registry],
    collect: async () => {
      const deps = this.#probes.dependencies ?? {};
      await Promise.all(
        Object.entries(deps).map(async ([dependency, check]) => {
          const ok = await within(check()).then(
            () => 1,
            () => 0,
          );
          this.up.set({ dependency }, ok);
        }),
      );
    },
  });

  readonly poolClaims = new Counter({
    name: 'berth_pool_claims_total',
    help: 'Creates served by a warm-pool sandbox, by memory limit.',
    labelNames: ['memory_limit'] as const,
    registers: [this.registry],
  });
  readonly poolMisses = new Counter({
    name: 'berth_pool_misses_total',
    help: 'Creates of a pooled memory limit that found the pool empty and created cold.',
    labelNames: ['memory_limit'] as const,
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: 'berth_build_info',
    help: 'Always 1; the labels say which build runs (version from package.json, commit at build time).',
    labelNames: ['version', 'commit'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_' });
    this.buildInfo.set({ version: buildInfo.version, commit: buildInfo.commit }, 1);
  }

  /** Wires the scrape-time reads; set once the stores exist. */
  probe(probes: MetricsProbes): void {
    this.#probes = { ...this.#probes, ...probes };
  }
}

/**
 * An egress reason, free text naming hosts, as a category fit for a label.
 * The event log keeps the full text.
 */
export function egressReasonCategory(reason: string | undefined): string {
  if (!reason) return 'none';
  if (/not on this container's allowlist$/.test(reason)) return 'not_allowlisted';
  if (/IP literal|not a hostname/.test(reason)) return 'ip_literal';
  if (/^port /.test(reason)) return 'port';
  if (/too many connections/.test(reason)) return 'too_many_connections';
  if (/in time|timed? ?out/i.test(reason)) return 'timeout';
  if (/malformed/.test(reason)) return 'malformed';
  if (/went away/.test(reason)) return 'client_gone';
  if (/address|resolv|private|public|range|DNS/i.test(reason)) return 'address_refused';
  return 'other';
}

/** A failure reason (free text) as a label value. */
export function failureReasonCategory(reason: string): string {
  if (/memory/.test(reason)) return 'oom';
  if (/not responding/.test(reason)) return 'unresponsive';
  if (/vanished|gone/.test(reason)) return 'vanished';
  if (/stopped/.test(reason)) return 'stopped';
  return 'other';
}

/**
 * `GET /metrics` in the Prometheus text format, for a scraper holding `token` as a bearer token.
 * Without a token configured the route does not exist (404): metrics are never public by default.
 */
export function metricsRoute(metrics: Metrics, token: string | undefined): Router {
  const router = Router();
  if (!token) return router;
  const expected = Buffer.from(`Bearer ${token}`);
  router.get('/metrics', async (req, res) => {
    const got = Buffer.from(req.header('authorization') ?? '');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      res.status(401).json({
        error: {
          message: 'Send the metrics token as a bearer token.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
      return;
    }
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  return router;
}
