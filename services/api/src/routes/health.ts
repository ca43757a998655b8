import { Router } from 'express';
import type { BuildInfo } from '../build-info.js';

export type ReadinessCheck = () => Promise<void>;

const withTimeout = (check: ReadinessCheck, ms: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    check().then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });

/**
 * /healthz: the process is up, and which build it runs. /readyz: every dependency answers, each
 * named in the body.
 */
export function healthRoutes(checks: Record<string, ReadinessCheck>, build: BuildInfo): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: build.version, commit: build.commit });
  });
  router.get('/readyz', async (_req, res) => {
    const entries = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check, 2000);
          return [name, { status: 'ok' }] as const;
        } catch {
          // No error text here: this route is public, and raw driver errors name hosts and paths.
          return [name, { status: 'unavailable' }] as const;
        }
      }),
    );
    const ready = entries.every(([, r]) => r.status === 'ok');
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ok' : 'unavailable', checks: Object.fromEntries(entries) });
  });
  return router;
}
