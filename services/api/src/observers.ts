import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import {
  isBerthError,
  type ContainerRecord,
  type EgressDecision as Decision,
  type EventStore,
  type ExecOutcome,
  type LifecycleEvent,
  type ReapReport,
  type ReconcileReport,
} from '@berth/core';
import { egressReasonCategory, failureReasonCategory, type Metrics } from './metrics.js';

/** Denials one container may add to the event log per minute; the counter counts them all. */
const EGRESS_EVENTS_PER_MINUTE = 10;

export interface JobObserver {
  reaped(report: ReapReport, ms: number): void;
  reapFailed(error: unknown): void;
  reconciled(report: ReconcileReport): void;
  reconcileFailed(error: unknown): void;
}

/**
 * The hooks the use-cases and the proxy call, turned into metrics and lifecycle events. Events are
 * written in the background: a slow or failing Postgres never holds a request or a tick (a
 * failed write is counted and logged, and the event is dropped).
 */
export function createObservers(deps: { metrics: Metrics; events: EventStore; logger: Logger }) {
  const { metrics, events, logger } = deps;
  const pending = new Set<Promise<void>>();
  const record = (event: LifecycleEvent): void => {
    const write = events
      .record(event)
      .catch((err: unknown) => {
        metrics.eventErrors.inc();
        logger.warn({ err, event }, 'writing a lifecycle event failed; dropped');
      })
      .finally(() => pending.delete(write));
    pending.add(write);
  };
  const egressWindow = new Map<string, { minute: number; n: number }>();

  const failed = (containerId: string, reason: string) => {
    metrics.failures.inc({ reason: failureReasonCategory(reason) });
    record({ kind: 'failed', containerId, reason });
  };

  return {
    /** Waits for the event writes in flight (tests, shutdown). */
    flush: async () => {
      await Promise.all(pending);
    },
    containers: {
      onCreated: (c: ContainerRecord, ms: number) => {
        metrics.creates.inc({ outcome: 'created' });
        metrics.createDuration.observe({ outcome: 'created' }, ms / 1000);
        record({ kind: 'created', containerId: c.id, projectId: c.projectId, reason: null });
      },
      onCreateFailed: (error: unknown, ms: number) => {
        const outcome = isBerthError(error) && error.status < 500 ? 'rejected' : 'error';
        metrics.creates.inc({ outcome });
        metrics.createDuration.observe({ outcome }, ms / 1000);
      },
      onDeleted: (c: ContainerRecord) => {
        metrics.deletes.inc();
        record({ kind: 'deleted', containerId: c.id, projectId: c.projectId });
      },
      onFailed: failed,
    },
    onExec: (o: ExecOutcome) => {
      const outcome = o.timedOut ? 'timeout' : o.oomKilled ? 'oom' : 'exit';
      metrics.execs.inc({ outcome });
      metrics.execDuration.observe({ outcome }, o.durationMs / 1000);
      if (o.timedOut)
        record({ kind: 'exec_timed_out', containerId: o.containerId, reason: `exec ${o.id}` });
      else if (o.oomKilled)
        record({
          kind: 'oom',
          containerId: o.containerId,
          reason: `exec ${o.id} was killed for exceeding the memory limit`,
        });
    },
    reaper: {
      onReaped: (containerId: string, lagMs: number) => {
        metrics.reaped.inc();
        metrics.expiries.inc({ outcome: 'removed' });
        metrics.reaperLag.observe(Math.max(0, lagMs) / 1000);
        logger.info({ containerId, lagMs }, 'container expired');
        record({ kind: 'expired', containerId, reason: null });
      },
      onError: (err: unknown, containerId: string) => {
        metrics.expiries.inc({ outcome: 'error' });
        logger.warn({ err, containerId }, 'removing an expired sandbox failed; retrying next tick');
      },
    },
    onReconcileFailed: failed,
    jobs: {
      reaped: (_report, ms) => {
        metrics.reaperTicks.inc({ outcome: 'ok' });
        metrics.reaperTickDuration.observe(ms / 1000);
      },
      reapFailed: () => metrics.reaperTicks.inc({ outcome: 'error' }),
      reconciled: (r) => {
        metrics.reconcileRuns.inc({ outcome: 'ok' });
        metrics.reconcileActions.inc({ action: 'orphan_removed' }, r.orphansRemoved);
        metrics.reconcileActions.inc({ action: 'abandoned_finished' }, r.abandonedFinished);
        metrics.reconcileActions.inc({ action: 'marked_failed' }, r.markedFailed);
      },
      reconcileFailed: () => metrics.reconcileRuns.inc({ outcome: 'error' }),
    } satisfies JobObserver,
    onEgress: (d: Decision) => {
      metrics.egressDecisions.inc({ result: d.decision, reason: egressReasonCategory(d.reason) });
      if (d.bytesUp) metrics.egressBytes.inc({ direction: 'up' }, d.bytesUp);
      if (d.bytesDown) metrics.egressBytes.inc({ direction: 'down' }, d.bytesDown);
      if (d.decision !== 'denied') return;
      // A sandbox hammering a denied host must not flood the log: a few per minute each.
      const minute = Math.floor(Date.now() / 60_000);
      const w = egressWindow.get(d.containerId);
      if (w && w.minute === minute && w.n >= EGRESS_EVENTS_PER_MINUTE) return;
      if (!w || w.minute !== minute) {
        if (egressWindow.size > 10_000) egressWindow.clear();
        egressWindow.set(d.containerId, { minute, n: 1 });
      } else w.n += 1;
      record({
        kind: 'egress_denied',
        containerId: d.containerId,
        reason: `${d.host || '(no host)'}:${d.port} ${d.reason ?? ''}`.trim(),
      });
    },
  };
}

export type Observers = ReturnType<typeof createObservers>;

/** The same hooks doing nothing (BERTH_OPERATOR_METRICS=off), to measure what they cost. */
export function silenced<T extends object>(hooks: T): T {
  return Object.fromEntries(
    Object.entries(hooks).map(([k, v]) => [
      k,
      typeof v === 'function' ? () => Promise.resolve() : silenced(v as object),
    ]),
  ) as T;
}

/** Uploads and downloads, told apart by route template, for the transfer metrics. */
const TRANSFERS: Record<string, 'upload' | 'download'> = {
  'POST /v1/files': 'upload',
  'POST /v1/containers/:id/files': 'upload',
  'GET /v1/files/:id/content': 'download',
  'GET /v1/containers/:id/files/:fileId/content': 'download',
};

/**
 * Counts every answered request by method, route template (never the raw path: ids would make
 * every container its own series) and status. Unmatched paths share one `unmatched` route.
 */
export function httpMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const read0 = socket.bytesRead;
    const written0 = socket.bytesWritten;
    res.once('finish', () => {
      const path = (req.route as { path?: unknown } | undefined)?.path;
      const route =
        typeof path === 'string'
          ? `${req.originalUrl.startsWith('/v1/') && !path.startsWith('/v1') ? '/v1' : ''}${path}`
          : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
      const direction = TRANSFERS[`${req.method} ${route}`];
      if (direction && res.statusCode < 400) {
        metrics.transferDuration.observe({ direction }, seconds);
        // Socket counters: the body plus the HTTP head, close enough for a rate.
        const bytes =
          direction === 'upload'
            ? Number(req.header('content-length')) || socket.bytesRead - read0
            : socket.bytesWritten - written0;
        metrics.transferBytes.inc({ direction }, Math.max(0, bytes));
      }
    });
    next();
  };
}
