import { timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from './build-info.js';

/**
 * The service's metrics, in a registry of its own (never prom-client's global one), built once in
 * the composition root and handed to whoever counts. Names are under `berth_`; labels stay
 * low-cardinality (never a container id or a project). docs/metrics.md lists each one.
 */
export class Metrics {
  readonly registry = new Registry();
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
  readonly reconcileErrors = new Counter({
    name: 'berth_reconcile_errors_total',
    help: 'Sandboxes the reconciler could not handle in one run (failed or past its per-item deadline).',
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
