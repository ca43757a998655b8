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
  /** Exec standbys waiting in this process. */
  standbys?: () => number;
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
  #counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }
  #histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) {
    return new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }
  readonly sandboxesUnresponsive = this.#counter(
    'berth_sandboxes_unresponsive_total',
    'Sandboxes found wedged (a Docker call past its deadline while the engine answered) and marked failed.',
  );
  readonly execs = this.#counter(
    'berth_execs_total',
    'Execs finished, by outcome: exit, timeout, oom.',
    ['outcome'] as const,
  );
  readonly execDuration = this.#histogram(
    'berth_exec_duration_seconds',
    'Wall time of finished execs, by outcome.',
    DURATION_BUCKETS,
    ['outcome'] as const,
  );
  readonly sessionRuns = this.#counter(
    'berth_session_runs_total',
    'Session runs finished, by outcome: ok, error, interrupted, restarted, died.',
    ['outcome'] as const,
  );
  readonly archiveFailures = this.#counter(
    'berth_archive_failures_total',
    'Archives of an expiring container (whole, or one file) that failed; expiry went on.',
  );
  readonly sandboxTransfers = this.#counter(
    'berth_sandbox_transfers_total',
    'Uploads and downloads into and out of sandboxes, by direction and by how their bytes went: channel (a Unix socket), stdio (the exec stream, for sandboxes without the channel).',
    ['direction', 'via'] as const,
  );
  readonly reconcileErrors = this.#counter(
    'berth_reconcile_errors_total',
    'Sandboxes the reconciler could not handle in one run (failed or past its per-item deadline).',
  );
  readonly reconcileActions = this.#counter(
    'berth_reconcile_actions_total',
    'What reconciliation did, by action: orphan_removed, abandoned_finished, marked_failed.',
    ['action'] as const,
  );
  readonly reconcileRuns = this.#counter(
    'berth_reconcile_runs_total',
    'Reconcile runs, by outcome: ok, error.',
    ['outcome'] as const,
  );
  readonly creates = this.#counter(
    'berth_container_creates_total',
    'Container creates, by outcome: created, rejected (a 4xx: quota, bad input), error.',
    ['outcome'] as const,
  );
  readonly createDuration = this.#histogram(
    'berth_container_create_duration_seconds',
    'Time to create a container (row, sandbox, seeded files), by outcome.',
    DURATION_BUCKETS,
    ['outcome'] as const,
  );
  readonly deletes = this.#counter(
    'berth_container_deletes_total',
    'Containers deleted through the API.',
  );
  readonly expiries = this.#counter(
    'berth_container_expiries_total',
    'Expired containers the reaper handled, by outcome: removed, error (retried next tick).',
    ['outcome'] as const,
  );
  readonly failures = this.#counter(
    'berth_container_failures_total',
    'Containers marked failed, by reason: oom, stopped, vanished, unresponsive.',
    ['reason'] as const,
  );
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
  readonly transferDuration = this.#histogram(
    'berth_file_transfer_duration_seconds',
    'Duration of file uploads and downloads (Files API and container files), by direction.',
    DURATION_BUCKETS,
    ['direction'] as const,
  );
  readonly transferBytes = this.#counter(
    'berth_file_transfer_bytes_total',
    'Bytes of file bodies received (upload) and sent (download).',
    ['direction'] as const,
  );
  readonly reaperTicks = this.#counter(
    'berth_reaper_ticks_total',
    'Reaper ticks, by outcome: ok, error.',
    ['outcome'] as const,
  );
  readonly reaperTickDuration = this.#histogram(
    'berth_reaper_tick_duration_seconds',
    'Duration of one reaper tick.',
    DURATION_BUCKETS,
  );
  readonly reaped = this.#counter(
    'berth_reaper_reaped_total',
    'Containers the reaper expired (sandbox removed, row expired).',
  );
  readonly reaperLag = this.#histogram(
    'berth_reaper_lag_seconds',
    'Time from a container deadline to the removal of its sandbox.',
    LAG_BUCKETS,
  );
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
  readonly eventsPurged = this.#counter(
    'berth_events_purged_total',
    'Lifecycle events deleted past BERTH_EVENT_RETENTION_HOURS.',
  );
  readonly eventErrors = this.#counter(
    'berth_event_write_errors_total',
    'Lifecycle events that could not be written to Postgres (logged and dropped).',
  );
  readonly egressDecisions = this.#counter(
    'berth_egress_decisions_total',
    'Egress proxy decisions, by result (allowed, denied) and reason category.',
    ['result', 'reason'] as const,
  );
  readonly egressBytes = this.#counter(
    'berth_egress_bytes_total',
    'Bytes through the egress proxy, by direction: up (sandbox to upstream), down.',
    ['direction'] as const,
  );
  readonly httpRequests = this.#counter(
    'berth_http_requests_total',
    'HTTP requests answered, by method, route template and status code.',
    ['method', 'route', 'status'] as const,
  );
  readonly httpDuration = this.#histogram(
    'berth_http_request_duration_seconds',
    'HTTP request duration, by method and route template.',
    DURATION_BUCKETS,
    ['method', 'route'] as const,
  );
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

  readonly poolClaims = this.#counter(
    'berth_pool_claims_total',
    'Creates served by a warm-pool sandbox, by memory limit and network policy.',
    ['memory_limit', 'network'] as const,
  );
  readonly poolMisses = this.#counter(
    'berth_pool_misses_total',
    'Creates of a pooled memory limit and network policy that found the pool empty and created cold.',
    ['memory_limit', 'network'] as const,
  );

  readonly execRuns = this.#counter(
    'berth_exec_runs_total',
    "Commands started in sandboxes for execs, by path: standby (handed to the sandbox's standby supervisor) or docker (a Docker exec of its own).",
    ['path'] as const,
  );
  readonly execStandbys = new Gauge({
    name: 'berth_exec_standbys',
    help: 'Standby supervisors waiting in sandboxes for their next command, in this process; read at scrape.',
    registers: [this.registry],
    collect: () => {
      const read = this.#probes.standbys;
      if (read) this.execStandbys.set(read());
    },
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
