import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Reaper, Reconciler } from '@berth/core';

export interface BackgroundJobsOptions {
  reaper: Reaper;
  reconciler: Reconciler;
  reaperCron: string;
  reconcileCron: string;
  logger: Logger;
}

export interface BackgroundJobs {
  /** Runs one reconciliation now (also what start-up does). */
  reconcile(): Promise<void>;
  /** Runs one reaper tick now. */
  reap(): Promise<void>;
  /** Stops the schedules; a tick in flight stops claiming and finishes what it holds. */
  stop(): Promise<void>;
}

/** The node-cron schedules of the reaper and the reconciler; a run never overlaps itself. */
export function startBackgroundJobs(options: BackgroundJobsOptions): BackgroundJobs {
  const { reaper, reconciler, logger } = options;
  const stopping = new AbortController();
  let reaping: Promise<void> | null = null;
  let reconciling: Promise<void> | null = null;

  const reap = (): Promise<void> =>
    (reaping ??= reaper
      .tick(stopping.signal)
      .then((report) => {
        if (report.expired || report.failed || report.purged || report.filesExpired)
          logger.info({ report }, 'reaped');
      })
      .catch((err: unknown) => logger.warn({ err }, 'reaper tick failed; the next tick retries'))
      .finally(() => {
        reaping = null;
      }));
  const reconcile = (): Promise<void> =>
    (reconciling ??= reconciler
      .run()
      .then((report) => logger.info({ report }, 'reconciled'))
      .catch((err: unknown) => logger.warn({ err }, 'reconcile failed; the next run retries'))
      .finally(() => {
        reconciling = null;
      }));

  const tasks = [
    cron.schedule(options.reaperCron, () => void reap(), { noOverlap: true, name: 'reaper' }),
    cron.schedule(options.reconcileCron, () => void reconcile(), {
      noOverlap: true,
      name: 'reconciler',
    }),
  ];
  return {
    reconcile,
    reap,
    async stop() {
      stopping.abort();
      await Promise.all(tasks.map((t) => t.stop()));
      await Promise.all([reaping, reconciling]);
    },
  };
}
