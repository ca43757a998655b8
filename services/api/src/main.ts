import pino, { type Logger } from 'pino';
import { systemClock } from '@berth/core';
import { PgApiKeyStore, type Pool } from '@berth/db';
import { UnsafeHostError, type DockerSandboxRuntime } from '@berth/sandbox-docker';
import { probeSendBuffer } from '@berth/socket-buffer';
import { compose, dockerClient } from './compose.js';
import { openDatabase } from './database.js';
import { startInOrder } from './lifecycle.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { tuneHeapGrowth } from './heap.js';

export interface RunningService {
  /** Where the HTTP API listens; null for the `reaper` role. */
  url: string | null;
  /** Run the reaper or the reconciler now instead of waiting for cron; null for the `api` role. */
  jobs: { reap(): Promise<void>; reconcile(): Promise<void> } | null;
  close(): Promise<void>;
}

/**
 * Refuses an engine that can't hold hostile code. An engine that doesn't answer yet is not a
 * reason to stay down: requests answer 503 until it does, and creates verify it first.
 */
async function verifyEngine(runtime: DockerSandboxRuntime, logger: Logger): Promise<void> {
  try {
    await runtime.verifyHost();
  } catch (error) {
    if (error instanceof UnsafeHostError) throw error;
    logger.warn({ err: error }, 'could not verify the Docker engine yet; creates will verify it');
  }
}

/**
 * Says what send buffer the sockets carrying sandboxes' bulk bytes get: one the kernel caps, or
 * can't be asked for, makes egress and uploads slower (never broken), and an operator should see it.
 */
async function reportSendBuffer(config: Config, logger: Logger): Promise<void> {
  const probe = await probeSendBuffer(config.BERTH_SOCKET_SEND_BUFFER).catch((error: unknown) => ({
    asked: config.BERTH_SOCKET_SEND_BUFFER,
    effective: null,
    note: `the probe failed (${(error as Error).message})`,
  }));
  if (probe.note && probe.asked > 0)
    logger.warn({ sendBuffer: probe }, `socket send buffer: ${probe.note}`);
  else logger.info({ sendBuffer: probe }, 'socket send buffer');
}

async function bootstrapKey(config: Config, pool: Pool) {
  if (!config.BERTH_BOOTSTRAP_API_KEY) return null;
  const projectId = await new PgApiKeyStore(pool).ensureProject(config.BERTH_BOOTSTRAP_PROJECT);
  return { key: config.BERTH_BOOTSTRAP_API_KEY, projectId };
}

/** Config → open (database, engine) → compose → start in order; `close` stops in reverse. */
export async function main(
  config: Config,
  /** Where log lines go; stdout unless given (tests read them). */
  logDestination?: pino.DestinationStream,
): Promise<RunningService> {
  const logger = pino(
    { level: config.BERTH_LOG_LEVEL, base: { service: 'berth', role: config.BERTH_ROLE } },
    ...(logDestination ? [logDestination] : []),
  );
  const docker = dockerClient(config);
  const pool = await openDatabase(config, {
    applicationName: `berth-${config.BERTH_ROLE}`,
    docker,
    log: (msg) => logger.info(msg),
  });
  let stop: () => Promise<void>;
  let berth: ReturnType<typeof compose>;
  try {
    const bootstrap = await bootstrapKey(config, pool);
    berth = compose({
      config,
      logger,
      clock: systemClock,
      pool,
      docker,
      bootstrap,
    });
    if (berth.http) await verifyEngine(berth.runtime, logger);
    if (berth.http) await reportSendBuffer(config, logger);
    stop = await startInOrder(berth.services, logger);
  } catch (error) {
    await pool.end();
    throw error;
  }
  if (!berth.http) logger.info('berth reaper running');
  const { reaper, reconciler } = berth;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info('shutting down: no new requests or claims; finishing what is in flight');
      await stop();
      await pool.end();
      logger.info('shut down');
    })());
  return {
    url: berth.http?.url ?? null,
    jobs:
      reaper && reconciler
        ? { reap: () => reaper.runNow(), reconcile: () => reconciler.runNow() }
        : null,
    close,
  };
}

/**
 * The process policy: a rejection nobody handled is a bug to log, not a reason to drop every
 * request in flight; an uncaught exception may have left state half-changed, so it is fatal and
 * the supervisor (compose, systemd) restarts the process.
 */
function installProcessPolicy(): void {
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
  installProcessPolicy();
  tuneHeapGrowth();
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
