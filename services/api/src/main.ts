import { join } from 'node:path';
import type { Server } from 'node:http';
import pino from 'pino';
import { FsBlobStore } from '@berth/blob-store-fs';
import {
  Authenticator,
  ContainerFilesService,
  ContainersService,
  ExecService,
  FilesService,
  Reaper,
  Reconciler,
  systemClock,
} from '@berth/core';
import {
  PgApiKeyStore,
  PgContainerFileStore,
  PgContainerStore,
  PgExpiryStore,
  PgFileStore,
} from '@berth/db';
import {
  DockerClient,
  DockerSandboxExecutor,
  DockerSandboxFiles,
  DockerSandboxRuntime,
  UnsafeHostError,
} from '@berth/sandbox-docker';
import { createApp } from './app.js';
import { Metrics, metricsRoute } from './metrics.js';
import { installClientErrorHandler } from './http/client-errors.js';
import { openDatabase } from './database.js';
import { createEgress, type Egress } from './egress.js';
import { startBackgroundJobs, type BackgroundJobs } from './background.js';
import { ConfigError, loadConfig, type Config } from './config.js';

export interface RunningService {
  /** Where the HTTP API listens; null for the `reaper` role. */
  url: string | null;
  jobs: BackgroundJobs | null;
  close(): Promise<void>;
}

/** The composition root: the only place adapters are built and wired together. */
export async function main(config: Config): Promise<RunningService> {
  const logger = pino({
    level: config.BERTH_LOG_LEVEL,
    base: { service: 'berth', role: config.BERTH_ROLE },
  });
  const clock = systemClock;

  const pool = await openDatabase(config, {
    applicationName: `berth-${config.BERTH_ROLE}`,
    log: (msg) => logger.info(msg),
  });

  const metrics = new Metrics();
  const store = new PgContainerStore(pool);
  // The one Docker client: every call through it has a deadline.
  const docker = new DockerClient({
    socketPath: config.BERTH_DOCKER_SOCKET,
    callTimeoutMs: config.BERTH_DOCKER_TIMEOUT_MS,
  });
  // The proxy serves sockets from this process; a reaper-only process has no sandboxes to serve.
  const egress: Egress | null =
    config.BERTH_ROLE === 'reaper' ? null : createEgress(config, store, logger);
  const runtime = new DockerSandboxRuntime({
    client: docker,
    image: config.BERTH_SANDBOX_IMAGE,
    instance: config.BERTH_INSTANCE,
    pidsLimit: config.BERTH_SANDBOX_PIDS_LIMIT,
    nanoCpus: Math.round(config.BERTH_SANDBOX_CPUS * 1e9),
    nofile: config.BERTH_SANDBOX_NOFILE,
    tmpSizeBytes: config.BERTH_SANDBOX_TMP_MB * 1024 * 1024,
    dataSizeBytes: config.BERTH_SANDBOX_DATA_MB * 1024 * 1024,
    dataInodes: config.BERTH_SANDBOX_DATA_INODES,
    tmpInodes: config.BERTH_SANDBOX_TMP_INODES,
    ...(config.BERTH_SANDBOX_RUNTIME ? { runtime: config.BERTH_SANDBOX_RUNTIME } : {}),
    ...(egress ? { egress: egress.sandbox } : {}),
  });

  if (config.BERTH_ROLE !== 'reaper') {
    // Refuse an engine that can't hold hostile code. An engine that doesn't answer yet is not a
    // reason to stay down: requests answer 503 until it does, and creates verify it first.
    try {
      await runtime.verifyHost();
    } catch (error) {
      if (error instanceof UnsafeHostError) throw error;
      logger.warn({ err: error }, 'could not verify the Docker engine yet; creates will verify it');
    }
  }

  let jobs: BackgroundJobs | null = null;
  if (config.BERTH_ROLE !== 'api') {
    const reconciler = new Reconciler({
      store,
      runtime,
      clock,
      creatingGraceMs: config.BERTH_CREATING_GRACE_SECONDS * 1000,
      onError: (containerId, err) => {
        metrics.reconcileErrors.inc();
        logger.warn({ err, containerId }, 'reconciling a sandbox failed; the next run retries');
      },
    });
    const reaper = new Reaper({
      store: new PgExpiryStore(pool),
      runtime,
      clock,
      concurrency: config.BERTH_REAPER_CONCURRENCY,
      maxPerTick: config.BERTH_REAPER_MAX_PER_TICK,
      retentionMs: config.BERTH_EXPIRED_RETENTION_HOURS * 3_600_000,
      onReaped: (containerId, lagMs) => logger.info({ containerId, lagMs }, 'container expired'),
      onError: (err, containerId) =>
        logger.warn({ err, containerId }, 'removing an expired sandbox failed; retrying next tick'),
    });
    jobs = startBackgroundJobs({
      reaper,
      reconciler,
      reaperCron: config.BERTH_REAPER_CRON,
      reconcileCron: config.BERTH_RECONCILE_CRON,
      logger,
    });
    // Start-up never waits on a sandbox: the first reconcile runs in the background.
    void jobs.reconcile();
  }

  let server: Server | null = null;
  let url: string | null = null;
  if (config.BERTH_ROLE !== 'reaper') {
    const keys = new PgApiKeyStore(pool);
    const bootstrap = config.BERTH_BOOTSTRAP_API_KEY
      ? {
          key: config.BERTH_BOOTSTRAP_API_KEY,
          projectId: await keys.ensureProject(config.BERTH_BOOTSTRAP_PROJECT),
        }
      : null;
    const files = new FilesService({
      files: new PgFileStore(pool),
      blobs: new FsBlobStore(join(config.BERTH_DATA_DIR, 'files')),
      clock,
      maxBytes: config.BERTH_MAX_UPLOAD_BYTES,
    });
    // Bound late: containers seed files through containerFiles, which uses containers.
    let containerFiles: ContainerFilesService | null = null;
    // Sandboxes that were running before a restart regain egress now, and only they.
    await egress?.sync();
    const containers = new ContainersService({
      store,
      runtime,
      clock,
      ...(egress ? { egress: egress.controller } : {}),
      seeder: {
        check: (projectId, fileIds) => containerFiles!.checkFileIds(projectId, fileIds),
        copy: async (projectId, container, fileIds) => {
          for (const id of fileIds) await containerFiles!.copyFile(projectId, container, id);
        },
      },
      maxLivePerProject: config.BERTH_MAX_CONTAINERS_PER_PROJECT,
      onUnresponsive: (containerId, reason) => {
        metrics.sandboxesUnresponsive.inc();
        logger.error({ containerId, reason }, 'sandbox not responding; marked failed');
      },
      onCleanupError: (err, id) =>
        logger.warn(
          { err, containerId: id },
          'cleanup after a failed create failed; reconcile will finish it',
        ),
    });
    containerFiles = new ContainerFilesService({
      containers,
      files,
      store: new PgContainerFileStore(pool),
      sandbox: new DockerSandboxFiles({
        client: docker,
        helperTimeoutMs: config.BERTH_FILES_HELPER_TIMEOUT_MS,
        idleTimeoutMs: config.BERTH_TRANSFER_IDLE_TIMEOUT_MS,
      }),
      clock,
      maxBytes: config.BERTH_MAX_UPLOAD_BYTES,
    });
    const app = createApp({
      files,
      containerFiles,
      maxUploadBytes: config.BERTH_MAX_UPLOAD_BYTES,
      maxInflightTransfers: config.BERTH_MAX_INFLIGHT_TRANSFERS,
      metricsRoute: metricsRoute(metrics, config.BERTH_METRICS_TOKEN),
      egressStats: (id) => egress?.proxy.stats(id) ?? null,
      logger,
      clock,
      authenticator: new Authenticator(keys, bootstrap),
      containers,
      exec: new ExecService({
        containers,
        executor: new DockerSandboxExecutor({
          client: docker,
          graceMs: config.BERTH_EXEC_GRACE_MS,
        }),
        runtime,
        clock,
        maxConcurrent: config.BERTH_EXEC_MAX_CONCURRENT,
        maxConcurrentTotal: config.BERTH_EXEC_MAX_CONCURRENT_TOTAL,
        onOutcome: (o) =>
          metrics.execs.inc({ outcome: o.timedOut ? 'timeout' : o.oomKilled ? 'oom' : 'exit' }),
        maxOutputBytes: config.BERTH_EXEC_MAX_OUTPUT_BYTES,
      }),
      execLimits: {
        defaultTimeoutMs: Math.min(config.BERTH_EXEC_TIMEOUT_MS, config.BERTH_EXEC_MAX_TIMEOUT_MS),
        maxTimeoutMs: config.BERTH_EXEC_MAX_TIMEOUT_MS,
        maxStdinBytes: config.BERTH_EXEC_MAX_STDIN_BYTES,
        maxInflightBodyBytes: config.BERTH_EXEC_MAX_INFLIGHT_BODY_MB * 1024 * 1024,
      },
      readiness: {
        postgres: async () => {
          await pool.query('select 1');
        },
        docker: () => runtime.ping(),
      },
      limits: {
        maxExpiryMinutes: config.BERTH_MAX_EXPIRY_MINUTES,
        maxFileIds: 100,
        maxJsonBytes: config.BERTH_MAX_JSON_BYTES,
        maxAllowedDomains: config.BERTH_EGRESS_MAX_DOMAINS,
      },
    });
    const listening: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.PORT, config.HOST, () => resolve(s)).once('error', reject);
    });
    installClientErrorHandler(listening, logger);
    server = listening;
    const address = listening.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
    logger.info({ url, bootstrapKey: bootstrap !== null }, `berth listening on ${url}`);
  } else {
    logger.info('berth reaper running');
  }

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info('shutting down: no new requests or claims; finishing what is in flight');
      const drained = server
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      server?.closeIdleConnections();
      const timer = setTimeout(
        () => server?.closeAllConnections(),
        config.BERTH_SHUTDOWN_TIMEOUT_MS,
      );
      await Promise.all([drained, jobs?.stop()]);
      await egress?.close();
      clearTimeout(timer);
      await pool.end();
      logger.info('shut down');
    })());
  return { url, jobs, close };
}

const isEntryPoint = import.meta.url === `file://${process.argv[1]}`;
if (isEntryPoint) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  // The process policy: a rejection nobody handled is a bug to log, not a reason to drop every
  // request in flight; an uncaught exception may have left state half-changed, so it is fatal and
  // the supervisor (compose, systemd) restarts the process.
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(
      `${JSON.stringify({ level: 50, msg: 'unhandled rejection', err: String((reason as Error)?.stack ?? reason) })}\n`,
    );
  });
  process.on('uncaughtException', (error) => {
    process.stderr.write(
      `${JSON.stringify({ level: 60, msg: 'uncaught exception; exiting', err: String(error.stack ?? error) })}\n`,
    );
    process.exit(70);
  });
  main(config).then(
    ({ close }) => {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        });
      }
    },
    (error: unknown) => {
      // One JSON line like every other log line (a raw stack would split into many under compose).
      process.stderr.write(
        `${JSON.stringify({ level: 60, msg: `berth failed to start: ${String((error as Error)?.message ?? error)}`, err: String((error as Error)?.stack ?? error) })}\n`,
      );
      process.exit(1);
    },
  );
}
