/**
 * `pnpm chaos [--minutes N] [--clients N]`: clients loop create → exec → upload → download →
 * delete against a real Berth while, once each, its Docker engine restarts, its Postgres restarts
 * and its process is SIGKILLed. Then it proves nothing was lost and nothing was left behind, and
 * exits non-zero if anything was.
 *
 * Everything runs on a Docker engine of the run's own (see chaos/engine.ts), never the machine's.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { postgresImage, sandboxImage, testDocker } from '@berth/testkit';
import { BerthProcess } from './chaos/berth-process.js';
import { checkAckedFiles, checkSandboxes, type Check } from './chaos/checks.js';
import { chaosClient, clientLoop, type LoopResults } from './chaos/client-loop.js';
import { ChaosEngine } from './chaos/engine.js';
import { startChaosPostgres, type ChaosPostgres } from './chaos/postgres.js';
import { printReport, type Disruption } from './chaos/report.js';
import { Tally } from './chaos/tally.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** The shortest grace the service accepts: abandoned creates are finished this soon after. */
const CREATING_GRACE_S = 10;

function option(name: string, env: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const raw = at >= 0 ? process.argv[at + 1] : process.env[env];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function run(interrupted: AbortSignal): Promise<boolean> {
  const minutes = option('minutes', 'CHAOS_MINUTES', 10);
  const clients = Math.round(option('clients', 'CHAOS_CLIENTS', 8));
  const runId = randomBytes(4).toString('hex');
  const instance = `chaos-${runId}`;
  const tmp = mkdtempSync(join(tmpdir(), 'berth-chaos-'));
  const logsDir = join(REPO, '.berth', 'chaos', instance);
  const engine = new ChaosEngine(join(tmp, 'dockerd.log'));
  const cleanups: (() => Promise<void>)[] = [];
  console.log(`chaos: ${minutes} min, ${clients} clients, instance ${instance}, logs ${logsDir}`);

  try {
    engine.lock();
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  cleanups.push(async () => engine.unlock());
  try {
    await engine.start({ fresh: true });
    cleanups.push(() => engine.destroy());
    const main = testDocker.docker;
    for (const image of [sandboxImage(), postgresImage()]) await engine.ensureImage(main, image);
    cleanups.push(async () => {
      const leftovers = await engine.docker.listContainers({
        all: true,
        filters: { label: [`org.berth.instance=${instance}`] },
      });
      const ours = await engine.docker.listContainers({
        all: true,
        filters: { label: [`org.berth.chaos=${runId}`] },
      });
      for (const c of [...leftovers, ...ours])
        await engine.docker.getContainer(c.Id).remove({ force: true, v: true });
    });

    const postgres: ChaosPostgres = await startChaosPostgres(engine.docker, {
      image: postgresImage(),
      port: await freePort(),
      runId,
    });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const apiKey = `sk-chaos-${randomBytes(16).toString('hex')}`;
    const berth = new BerthProcess({
      cwd: REPO,
      url,
      logPath: join(tmp, 'berth.log'),
      env: {
        DATABASE_URL: postgres.url,
        HOST: '127.0.0.1',
        PORT: String(port),
        BERTH_BOOTSTRAP_API_KEY: apiKey,
        BERTH_INSTANCE: instance,
        BERTH_DATA_DIR: join(tmp, 'data'),
        BERTH_EGRESS_DIR: join(tmp, 'egress'),
        BERTH_DOCKER_SOCKET: engine.socketPath,
        BERTH_SANDBOX_IMAGE: sandboxImage(),
        BERTH_RECONCILE_CRON: '*/5 * * * * *',
        BERTH_CREATING_GRACE_SECONDS: String(CREATING_GRACE_S),
        BERTH_MAX_CONTAINERS_PER_PROJECT: '100000',
        BERTH_LOG_LEVEL: 'info',
      },
    });
    berth.start();
    cleanups.push(() => berth.stop());
    await berth.waitFor('/readyz', 120_000);

    const tally = new Tally();
    const results: LoopResults = {
      acked: [],
      iterations: 0,
      completed: 0,
      containersCreated: 0,
      containersDeleted: 0,
    };
    const startedAt = Date.now();
    let stopAt = startedAt + minutes * 60_000;
    interrupted.addEventListener('abort', () => (stopAt = Date.now()));

    const disruptions: Disruption[] = [];
    const disrupt = async (name: string, at: number, action: () => Promise<void>) => {
      const when = startedAt + at * (stopAt - startedAt);
      while (Date.now() < when && !interrupted.aborted) await sleep(200);
      if (interrupted.aborted) return;
      const begin = Date.now();
      const d: Disruption = { name, atMs: begin - startedAt, tookMs: 0, readyAfterMs: null };
      disruptions.push(d);
      await action();
      d.tookMs = Date.now() - begin;
      d.readyAfterMs = await berth
        .waitFor('/readyz', 180_000)
        .then(() => Date.now() - begin)
        .catch(() => null);
    };
    const schedule = (async () => {
      await disrupt('dockerd restart', 0.25, () => engine.restart());
      await disrupt('postgres restart', 0.5, () => postgres.restart());
      await disrupt('berth SIGKILL', 0.75, () => berth.kill());
    })();

    await Promise.all([
      schedule,
      ...Array.from({ length: clients }, (_, index) =>
        clientLoop({ index, url, apiKey, stopAt: () => stopAt, tally, results }),
      ),
    ]);
    const durationMs = Date.now() - startedAt;
    if (interrupted.aborted) throw new Error('interrupted');

    // Settled: the service answers, then the files it acknowledged are read back.
    await berth.waitFor('/readyz', 180_000);
    const checks: Check[] = [
      {
        name: 'zero wrong answers',
        passed: tally.wrongAnswers() === 0,
        detail: `${tally.wrongAnswers()} answers with status 200 and wrong bytes or output`,
      },
      await checkAckedFiles(chaosClient(url, apiKey), results.acked),
    ];
    // Abandoned creates are finished only after the grace; then two full reconciles (the second
    // one started after the first ended, so after the grace too).
    await sleep(CREATING_GRACE_S * 1000 + 1000);
    const settled = Date.now();
    await berth.waitForReconcile(settled, 60_000);
    const first = Math.max(
      ...berth
        .logLines()
        .filter((l) => l.msg === 'reconciled')
        .map((l) => l.time),
    );
    await berth.waitForReconcile(first, 60_000);
    const sandboxes = await checkSandboxes(engine.docker, postgres.url, instance);
    checks.push(...sandboxes.checks);

    printReport({
      minutes,
      clients,
      durationMs,
      tally,
      results,
      disruptions,
      checks,
      rowsByStatus: sandboxes.rowsByStatus,
      berth,
    });
    return checks.every((c) => c.passed);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) =>
        console.error(`chaos: cleanup step failed: ${(error as Error).message}`),
      );
    }
    mkdirSync(logsDir, { recursive: true });
    for (const log of ['berth.log', 'dockerd.log'])
      if (existsSync(join(tmp, log))) cpSync(join(tmp, log), join(logsDir, log), { force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
}

const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupt.signal.aborted) process.exit(130);
    console.error('chaos: stopping the clients and cleaning up (again to quit at once)');
    interrupt.abort();
  });
}

run(interrupt.signal).then(
  (passed) => process.exit(passed ? 0 : 1),
  (error: unknown) => {
    console.error(`chaos: ${(error as Error).stack ?? String(error)}`);
    process.exit(interrupt.signal.aborted ? 130 : 1);
  },
);
