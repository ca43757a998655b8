import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { sandboxImage, startPostgresServer, testDocker } from '@berth/testkit';

const docker = testDocker.docker;

export interface Row {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

export interface BenchBerth {
  url: string;
  apiKey: string;
  instance: string;
  metricsToken: string;
  pool: pg.Pool;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** The Docker name of a container's sandbox (a warm-pool one keeps its slot's name). */
  sandboxOf(containerId: string): Promise<string>;
  /** The service's own process: its CPU time and resident memory, read from /proc. */
  service: ServiceProcess;
  close(): Promise<void>;
}

export interface ServiceProcess {
  pid: number;
  /** User + system CPU time so far, in ms (the kernel counts it in 10 ms ticks). */
  cpuMs(): number;
  /** Resident set size now, in bytes. */
  rss(): number;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TICK_MS = 1000 / 100; // USER_HZ: 100 on Linux

function serviceProcess(pid: number): ServiceProcess {
  return {
    pid,
    cpuMs() {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    },
    rss() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The service in a process of its own, as deployed (`main.ts` under tsx): its heap, its garbage
 * collector and its CPU are its own, not shared with the bench's clients and bare twins. Resolves
 * once /readyz answers 200.
 */
async function startService(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  // To look inside the service: BENCH_SERVICE_NODE_ARGS goes on its node command line
  // (`--cpu-prof --cpu-prof-dir=DIR`, `--trace-gc`), and BENCH_SERVICE_STDOUT names a file for what
  // it prints (its log is silent; V8's traces go there).
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const stdout = process.env.BENCH_SERVICE_STDOUT;
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--conditions=development', '--import', 'tsx', 'services/api/src/main.ts'],
    {
      cwd: ROOT,
      // Only what locates the engine comes from the bench's environment; the rest is `env`.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...Object.fromEntries(
          ['DOCKER_HOST', 'BERTH_DOCKER_SOCKET'].flatMap((k) =>
            process.env[k] ? [[k, process.env[k]]] : [],
          ),
        ),
        ...env,
        PORT: String(port),
      },
      stdio: ['ignore', stdout ? openSync(stdout, 'w') : 'ignore', 'pipe'],
    },
  );
  // Gone with the bench, however it ends.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + String(c)).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the bench service exited: ${stderr}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { child, url };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the bench service was not ready in 120 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** SIGTERM (the service drains and stops), SIGKILL after 30 s. */
async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** BERTH_POOL_SIZES of the bench service: per network policy, at 1g. */
export const POOL_SIZE = 16;
export const ALLOWLIST_POOL_SIZE = 4;

/**
 * One Postgres (testcontainers) and the real service, in its own process on a free port, for a
 * whole bench run.
 */
export async function startBenchBerth(env: Record<string, string> = {}): Promise<BenchBerth> {
  const postgres = await startPostgresServer({ user: 'bench', migratedDatabase: 'bench' });
  // The service reaches Postgres as it does in compose, at the container's address: through the
  // mapped port, docker-proxy's extra hop cost each query ~1 ms more here (exec's lookup: 2.4 ms
  // p50 against 1.5 ms direct, on this idle 2-core host).
  const databaseUrl = (await postgres.directUrl()) ?? postgres.url();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const apiKey = `sk-bench-${randomBytes(16).toString('hex')}`;
  const instance = `bench${randomBytes(4).toString('hex')}`;
  const metricsToken = `bench-metrics-${randomBytes(16).toString('hex')}`;
  // Its own data and egress directories: a second Berth of the run (sandbox-egress, admin) has a
  // database of its own, so its sync would take the other's egress sockets for orphans and remove
  // them (a sandbox's curl then got an empty reply).
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  const started = startService({
    DATABASE_URL: databaseUrl,
    BERTH_INSTANCE: instance,
    BERTH_DATA_DIR: join(dir, 'data'),
    BERTH_EGRESS_DIR: join(dir, 'egress'),
    BERTH_BOOTSTRAP_API_KEY: apiKey,
    BERTH_LOG_LEVEL: 'silent',
    BERTH_SANDBOX_IMAGE: sandboxImage(),
    BERTH_MAX_CONTAINERS_PER_PROJECT: '100000',
    // A pool deep enough for the load profile's 16 agents, and a small allowlist one (the
    // pool-allowlist part); refilled as fast as Docker allows.
    BERTH_POOL_SIZES: `1g=${POOL_SIZE},1g/allowlist=${ALLOWLIST_POOL_SIZE}`,
    BERTH_POOL_FILL_INTERVAL_MS: '0',
    BERTH_METRICS_TOKEN: metricsToken,
    ...env,
  });
  /** What the service leaves once it is gone: the bench's client pool, Postgres, the directory. */
  const removeRest = async () => {
    await pool.end();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  // A service that fails to start (a bad BENCH_SERVICE_NODE_ARGS) leaves no Postgres behind.
  const { child, url } = await started.catch(async (error: unknown) => {
    await removeRest();
    throw error;
  });
  return {
    url,
    apiKey,
    instance,
    metricsToken,
    pool,
    api: (path, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          ...(init.headers ?? {}),
        },
      }),
    async sandboxOf(containerId) {
      const { rows } = await pool.query<{ pool_slot: string | null }>(
        'select pool_slot from containers where id = $1',
        [containerId],
      );
      return `berth-${rows[0]?.pool_slot ?? containerId}`;
    },
    service: serviceProcess(child.pid!),
    async close() {
      await stopService(child);
      // Warm-pool sandboxes outlive requests: remove everything this instance left.
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`org.berth.instance=${instance}`] },
      });
      await Promise.all(
        left.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
      await removeRest();
    },
  };
}
