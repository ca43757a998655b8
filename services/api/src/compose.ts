import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { FsBlobStore } from '@berth/blob-store-fs';
import {
  Authenticator,
  ContainerAccess,
  ContainerArchiver,
  ContainerRestorer,
  ContainerFilesService,
  ContainersService,
  EgressSync,
  ExecService,
  FileExpiry,
  FilesService,
  Reaper,
  Reconciler,
  SessionsService,
  SkillsService,
  type Clock,
} from '@berth/core';
import {
  PgAdminStore,
  PgApiKeyStore,
  PgArchiveStore,
  PgContainerFileStore,
  PgContainerSkillStore,
  PgContainerStore,
  PgEventStore,
  PgExpiryStore,
  PgFileStore,
  PgSessionStore,
  PgSkillStore,
  type Pool,
} from '@berth/db';
import {
  CgroupUsageReader,
  DockerClient,
  DockerSandboxExecutor,
  DockerSandboxFiles,
  DockerSandboxRuntime,
  DockerSandboxSessions,
  DockerSkillInstaller,
  FilesChannel,
} from '@berth/sandbox-docker';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { createEgress } from './egress.js';
import { HttpServer } from './http/server.js';
import { Scheduled, type Job, type Service } from './lifecycle.js';
import { Metrics, metricsRoute } from './metrics.js';
import { createObservers, httpMetrics, silenced, type Observers } from './observers.js';
import { createWarmPool } from './pool.js';

/** What `main` opened (the I/O) before the graph is built. */
export interface Opened {
  config: Config;
  logger: Logger;
  clock: Clock;
  pool: Pool;
  /** The one Docker client: every call through it has a deadline. */
  docker: DockerClient;
  /** The bootstrap key and its project, when one is configured. */
  bootstrap: { key: string; projectId: string } | null;
}

export interface Berth {
  /** In start order; stopped in reverse. */
  services: Service[];
  runtime: DockerSandboxRuntime;
  /** Null for the `reaper` role. */
  http: HttpServer | null;
  /** Null for the `api` role. */
  reaper: Job | null;
  reconciler: Job | null;
}

export function dockerClient(config: Config): DockerClient {
  return new DockerClient({
    socketPath: config.BERTH_DOCKER_SOCKET,
    callTimeoutMs: config.BERTH_DOCKER_TIMEOUT_MS,
  });
}

/**
 * The composition step: builds the whole object graph from what `main` opened, and does no I/O
 * itself. Roles decide which services exist: `api` serves HTTP (and the egress proxy its sandboxes
 * need), `reaper` runs the reaper and the reconciler, `all` both.
 */
export function compose({ config, logger, clock, pool, docker, bootstrap }: Opened): Berth {
  const serves = config.BERTH_ROLE !== 'reaper';
  const reaps = config.BERTH_ROLE !== 'api';
  const store = new PgContainerStore(pool, clock);
  const fileStore = new PgFileStore(pool, clock);
  const blobs = new FsBlobStore(join(config.BERTH_DATA_DIR, 'files'));
  // Operators' view: metrics, the lifecycle event log and the admin API (docs/metrics.md).
  const metrics = new Metrics();
  const events = new PgEventStore(pool);
  const adminStore = new PgAdminStore(pool);
  const counting = config.BERTH_OPERATOR_METRICS === 'on';
  const observe = (counting ? (o: Observers) => o : silenced)(
    createObservers({ metrics, events, logger }),
  );

  // The proxy serves sockets from this process; a reaper-only process has no sandboxes to serve.
  const egress = serves ? createEgress(config, logger, observe.onEgress) : null;
  // Uploads and downloads over a socket of their own (docs/files.md), beside the egress sockets.
  const filesChannel =
    config.BERTH_FILES_CHANNEL === '1'
      ? new FilesChannel({
          hostDir: join(resolve(config.BERTH_EGRESS_DIR), 'files-channel'),
          chownToSandbox: process.getuid?.() === 0,
          sendBuffer: config.BERTH_SOCKET_SEND_BUFFER,
        })
      : undefined;
  const executor = new DockerSandboxExecutor({
    client: docker,
    graceMs: config.BERTH_EXEC_GRACE_MS,
    standby: config.BERTH_EXEC_STANDBY === '1',
    onRun: (path) => metrics.execRuns.inc({ path }),
  });
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
    ...(filesChannel ? { filesChannel } : {}),
    onRemoved: (containerId) => executor.forget(containerId),
  });

  // The warm pool: every role reconciles it; only serving roles fill it.
  const warm = createWarmPool(
    config,
    pool,
    runtime,
    metrics,
    logger,
    egress ? { controller: egress.controller, scope: egress.proxy.runDir } : undefined,
  );

  // Files after expiry (docs/files.md): one files adapter and one file store for the archiver
  // (in the reaper) and the API; archived bytes in a blob store of their own.
  const sandboxFiles = new DockerSandboxFiles({
    client: docker,
    helperTimeoutMs: config.BERTH_FILES_HELPER_TIMEOUT_MS,
    idleTimeoutMs: config.BERTH_TRANSFER_IDLE_TIMEOUT_MS,
    ...(filesChannel ? { channel: filesChannel } : {}),
    onTransfer: (transfer) => metrics.sandboxTransfers.inc({ ...transfer }),
  });
  const containerFileStore = new PgContainerFileStore(pool, clock);
  const archives = new PgArchiveStore(pool);
  const archiver =
    config.BERTH_ARCHIVE_ON_EXPIRY === '1'
      ? new ContainerArchiver({
          sandbox: sandboxFiles,
          files: containerFileStore,
          archives,
          blobs: new FsBlobStore(join(config.BERTH_DATA_DIR, 'archives')),
          clock,
          maxBytes: config.BERTH_ARCHIVE_MAX_MB * 1024 * 1024,
          timeoutMs: config.BERTH_ARCHIVE_TIMEOUT_MS,
          onError: (err, containerId, path) => {
            metrics.archiveFailures.inc();
            logger.warn({ err, containerId, path }, 'archiving an expiring container failed');
          },
          onArchived: (containerId, report) =>
            logger.info({ containerId, report }, 'container archived'),
        })
      : null;

  // Stopped last: the event writes still in flight once everything else has stopped.
  const services: Service[] = [
    { name: 'event-log', start: async () => {}, stop: () => observe.flush() },
  ];
  // The execs' standby supervisors: let go at shutdown, so each reads EOF on its stdin and exits.
  if (serves)
    services.push({
      name: 'exec-standbys',
      start: async () => {},
      stop: async () => executor.close(),
    });
  if (egress) {
    const sync = new EgressSync({ store, egress: egress.controller, pool: warm.store });
    // Sandboxes that were running before a restart regain egress before the API answers.
    // The proxy outlives its sync: stopped in reverse, the sync stops before the proxy closes.
    services.push(
      { name: 'egress-proxy', start: async () => {}, stop: () => egress.proxy.close() },
      new Scheduled({
        name: 'egress-sync',
        cron: '*/30 * * * * *',
        run: () => sync.run(),
        logger,
        firstRun: 'await',
        failureMessage: 'egress sync failed',
      }),
    );
  }

  let reaper: Job | null = null;
  let reconciler: Job | null = null;
  if (reaps) {
    const reconcile = new Reconciler({
      store,
      runtime,
      clock,
      creatingGraceMs: config.BERTH_CREATING_GRACE_SECONDS * 1000,
      pool: warm.store,
      onError: (containerId, err) => {
        metrics.reconcileErrors.inc();
        logger.warn({ err, containerId }, 'reconciling a sandbox failed; the next run retries');
      },
      onMarkedFailed: observe.onReconcileFailed,
    });
    const reap = new Reaper({
      store: new PgExpiryStore(pool, clock),
      runtime,
      clock,
      concurrency: config.BERTH_REAPER_CONCURRENCY,
      maxPerTick: config.BERTH_REAPER_MAX_PER_TICK,
      retentionMs: config.BERTH_EXPIRED_RETENTION_HOURS * 3_600_000,
      // Files API `expires_after`: the same tick removes expired files' rows and bytes.
      fileExpiry: new FileExpiry({ files: fileStore, blobs, clock }),
      ...(archiver ? { archiver } : {}),
      ...observe.reaper,
    });
    const eventRetentionMs = config.BERTH_EVENT_RETENTION_HOURS * 3_600_000;
    // Start-up never waits on a sandbox: the first reconcile runs in the background.
    const reconcileJob = new Scheduled({
      name: 'reconciler',
      cron: config.BERTH_RECONCILE_CRON,
      run: () => reconcile.run(),
      logger,
      firstRun: 'background',
      onReport: (report) => {
        observe.jobs.reconciled(report);
        logger.info({ report }, 'reconciled');
      },
      failureMessage: 'reconcile failed; the next run retries',
      onFailure: () => observe.jobs.reconcileFailed(),
    });
    const reapJob = new Scheduled({
      name: 'reaper',
      cron: config.BERTH_REAPER_CRON,
      run: async (signal) => {
        const started = performance.now();
        const report = await reap.tick(signal);
        observe.jobs.reaped(report, performance.now() - started);
        // Housekeeping of the event log's retention; its failure is the log's, not the tick's.
        if (!signal.aborted) {
          const before = new Date(clock.now().getTime() - eventRetentionMs);
          await events.purge(before, 5_000).then(
            (n) => metrics.eventsPurged.inc(n),
            (err: unknown) => logger.warn({ err }, 'reaper housekeeping failed'),
          );
        }
        return report;
      },
      logger,
      firstRun: 'none',
      onReport: (report) => {
        if (report.expired || report.failed || report.purged || report.filesExpired)
          logger.info({ report }, 'reaped');
      },
      failureMessage: 'reaper tick failed; the next tick retries',
      onFailure: () => observe.jobs.reapFailed(),
    });
    services.push(reconcileJob, reapJob);
    reconciler = reconcileJob;
    reaper = reapJob;
  }

  let http: HttpServer | null = null;
  if (serves && egress) {
    const access = new ContainerAccess({
      store,
      clock,
      onUnresponsive: (containerId, reason) => {
        metrics.sandboxesUnresponsive.inc();
        logger.error({ containerId, reason }, 'sandbox not responding; marked failed');
      },
      onFailed: observe.containers.onFailed,
    });
    const files = new FilesService({
      files: fileStore,
      blobs,
      clock,
      maxBytes: config.BERTH_MAX_UPLOAD_BYTES,
    });
    const containerFiles = new ContainerFilesService({
      containers: access,
      files,
      store: containerFileStore,
      sandbox: sandboxFiles,
      clock,
      maxBytes: config.BERTH_MAX_UPLOAD_BYTES,
      ...(archiver
        ? {
            archive: {
              open: (containerId: string, fileId: string) => archiver.open(containerId, fileId),
              maxBytes: config.BERTH_ARCHIVE_MAX_MB * 1024 * 1024,
            },
          }
        : {}),
    });
    // Skills: zips in their own blob directory, rows in Postgres.
    const skills = new SkillsService({
      store: new PgSkillStore(pool),
      blobs: new FsBlobStore(join(config.BERTH_DATA_DIR, 'skills')),
      clock,
    });
    const containers = new ContainersService({
      store,
      runtime,
      clock,
      access,
      egress: egress.controller,
      ...(egress.secrets ? { secrets: egress.secrets } : {}),
      seeder: containerFiles.seeder(),
      skills: {
        resolve: (projectId, params, budget) => skills.resolve(projectId, params, budget),
        installer: new DockerSkillInstaller({ client: docker }),
        store: new PgContainerSkillStore(pool),
      },
      maxLivePerProject: config.BERTH_MAX_CONTAINERS_PER_PROJECT,
      pool: warm.pool,
      ...(archiver ? { beforeRemove: (id: string) => archiver.discard(id) } : {}),
      ...observe.containers,
      onCleanupError: (err, id) =>
        logger.warn(
          { err, containerId: id },
          'cleanup after a failed create failed; reconcile will finish it',
        ),
    });
    const exec = new ExecService({
      containers: access,
      executor,
      runtime,
      clock,
      maxConcurrent: config.BERTH_EXEC_MAX_CONCURRENT,
      maxConcurrentTotal: config.BERTH_EXEC_MAX_CONCURRENT_TOTAL,
      onOutcome: observe.onExec,
      maxOutputBytes: config.BERTH_EXEC_MAX_OUTPUT_BYTES,
    });
    // Stateful Python sessions: runs share the exec service's per-container slots.
    const sessions = new SessionsService({
      containers,
      sandbox: new DockerSandboxSessions({
        client: docker,
        interruptGraceMs: config.BERTH_SESSION_INTERRUPT_GRACE_MS,
      }),
      store: new PgSessionStore(pool),
      runtime,
      clock,
      reserve: (projectId, containerId) => exec.reserve(projectId, containerId),
      maxPerContainer: config.BERTH_SESSIONS_MAX_PER_CONTAINER,
      maxOutputChars: config.BERTH_EXEC_MAX_OUTPUT_BYTES,
      onRun: (o) => metrics.sessionRuns.inc({ outcome: o.end }),
    });
    const app = createApp({
      files,
      containerFiles,
      maxUploadBytes: config.BERTH_MAX_UPLOAD_BYTES,
      maxInflightTransfers: config.BERTH_MAX_INFLIGHT_TRANSFERS,
      metricsRoute: metricsRoute(metrics, config.BERTH_METRICS_TOKEN),
      egressStats: (id) => egress.proxy.stats(id),
      operators: {
        httpMetrics: counting ? httpMetrics(metrics) : (_req, _res, next) => next(),
        admin: {
          admin: adminStore,
          events,
          usage: new CgroupUsageReader({
            client: docker,
            instance: config.BERTH_INSTANCE,
            root: config.BERTH_CGROUP_ROOT,
          }),
          usageDeadlineMs: config.BERTH_ADMIN_USAGE_DEADLINE_MS,
          onUsageError: (err) => logger.warn({ err }, 'reading live sandbox usage failed'),
        },
      },
      logger,
      clock,
      authenticator: new Authenticator(new PgApiKeyStore(pool), bootstrap),
      containers,
      skills,
      exec,
      sessions,
      restorer: archiver
        ? new ContainerRestorer({ containers, containerFiles, archiver, archives })
        : null,
      sessionLimits: {
        defaultTimeoutMs: Math.min(config.BERTH_EXEC_TIMEOUT_MS, config.BERTH_EXEC_MAX_TIMEOUT_MS),
        maxTimeoutMs: config.BERTH_EXEC_MAX_TIMEOUT_MS,
        maxCodeBytes: config.BERTH_MAX_JSON_BYTES,
      },
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
      },
    });
    metrics.probe({
      containers: async () => {
        const summary = await adminStore.summary(clock.now());
        return { byStatus: summary.byStatus, backlog: summary.reaperBacklog };
      },
      dependencies: {
        postgres: async () => {
          await pool.query('select 1');
        },
        docker: () => runtime.ping(),
      },
      standbys: () => executor.standbys,
    });
    http = new HttpServer({
      app,
      host: config.HOST,
      port: config.PORT,
      shutdownTimeoutMs: config.BERTH_SHUTDOWN_TIMEOUT_MS,
      logger,
    });
    // Last to start: the pool fills once the API answers, and stops first.
    services.push(http, {
      name: 'pool-filler',
      start: async () => warm.start(),
      stop: () => warm.stop(),
    });
  }

  return { services, runtime, http, reaper, reconciler };
}
