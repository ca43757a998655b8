import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { expect } from 'vitest';
import type { ErrorEnvelope } from '@berth/contracts';
import { generateApiKey } from '@berth/core';
import { PgAdminStore, PgApiKeyStore, type Pool } from '@berth/db';
import {
  createTestDatabase,
  labelledRuntime,
  removeProbes,
  sandboxImage,
  type inspectSandbox,
} from '@berth/testkit';
import { test as base } from '@berth/testkit/fixtures';
import type { DockerSandboxRuntime } from '@berth/sandbox-docker';
import { loadConfig } from '../src/config.js';
import { main } from '../src/main.js';

export interface RunningBerth {
  url: string;
  apiKey: string;
  /** The official SDK, pointed at this instance. Retries off so errors surface as thrown. */
  client: OpenAI;
  /** The sandbox label instance this Berth uses; nothing else on the daemon carries it. */
  instance: string;
  databaseUrl: string;
  /** BERTH_DATA_DIR of this instance (blob stores live under it). */
  dataDir: string;
  /** The test database, for arranging rows (e.g. moving last_active_at into the past). */
  pool: Pool;
  /** Run the reaper or the reconciler now instead of waiting for cron. */
  jobs: NonNullable<Awaited<ReturnType<typeof main>>['jobs']>;
  /** Sees only this instance's sandboxes. */
  runtime: DockerSandboxRuntime;
  /** fetch against this instance with the bootstrap key. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** POSTs `body` as JSON with the bootstrap key (the exec, session and create routes). */
  postJson(path: string, body: unknown, init?: RequestInit): Promise<Response>;
  /** A second project with its own key, for isolation tests. */
  newProjectClient(): Promise<{ client: OpenAI; apiKey: string }>;
  /** A new admin key (the dashboard's and /admin's), returned in the clear. */
  newAdminKey(name?: string): Promise<string>;
  /** Moves the containers' last activity `minutes` into the past, as if that time had gone by. */
  age(ids: string[], minutes: number): Promise<void>;
  /** A container with a 1-minute expiry whose last activity is 2 minutes ago: expired, unreaped. */
  createExpired(name: string): Promise<OpenAI.Containers.ContainerCreateResponse>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface BerthOptions {
  /** Leave its sandboxes running at disposal, for the next instance (a restart test). */
  keepSandboxes?: boolean;
  /** Collects every log line (JSON) instead of stdout. */
  logLines?: string[];
}

/**
 * Boots the real service (main.ts, the composition root) on a free port, against its own
 * database cloned from the migrated template and its own sandbox label instance. Disposal shuts
 * it down, removes every sandbox of that instance, and fails if any remained.
 */
export async function startBerth(
  env: Record<string, string> = {},
  options: BerthOptions = {},
): Promise<RunningBerth> {
  const db = await createTestDatabase();
  const instance = env.BERTH_INSTANCE ?? `t${randomBytes(5).toString('hex')}`;
  const apiKey = env.BERTH_BOOTSTRAP_API_KEY ?? `sk-test-${randomBytes(16).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-data-'));
  const config = loadConfig({
    BERTH_DATA_DIR: dataDir,
    BERTH_EGRESS_DIR: join(dataDir, 'egress'),
    NODE_ENV: 'test',
    BERTH_TEST_MODE: '1',
    DATABASE_URL: db.url,
    PORT: '0',
    BERTH_INSTANCE: instance,
    BERTH_BOOTSTRAP_API_KEY: apiKey,
    BERTH_LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'silent',
    BERTH_SANDBOX_IMAGE: sandboxImage(),
    // No warm pool unless a test asks for one (services/api/test/pool.e2e.test.ts).
    BERTH_POOL_SIZES: '0',
    ...env,
  });
  const lines = options.logLines;
  const app = await main(
    config,
    lines ? { write: (line: string) => void lines.push(line) } : undefined,
  );
  const url = app.url ?? '';
  const runtime = labelledRuntime(instance);
  const clientFor = (key: string) =>
    new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
  const client = clientFor(apiKey);
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${apiKey}`, ...(init.headers ?? {}) },
    });
  const age = async (ids: string[], minutes: number) => {
    await db.pool.query(
      `update containers set last_active_at = last_active_at - $2 * interval '1 minute' where id = any($1)`,
      [ids, minutes],
    );
  };

  let disposed: Promise<void> | undefined;
  return {
    url,
    apiKey,
    client,
    instance,
    databaseUrl: db.url,
    dataDir,
    pool: db.pool,
    jobs: app.jobs!,
    runtime,
    api,
    postJson: (path, body, init = {}) =>
      api(path, {
        method: 'POST',
        ...init,
        headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
        body: JSON.stringify(body),
      }),
    async newProjectClient() {
      const keys = new PgApiKeyStore(db.pool);
      const projectId = await keys.ensureProject(`p-${randomBytes(4).toString('hex')}`);
      const key = generateApiKey();
      await keys.create({ projectId, name: 'test', prefix: key.prefix, hash: key.hash });
      return { client: clientFor(key.key), apiKey: key.key };
    },
    async newAdminKey(name = 'test') {
      const key = generateApiKey();
      await new PgAdminStore(db.pool).createAdminKey({ name, prefix: key.prefix, hash: key.hash });
      return key.key;
    },
    age,
    async createExpired(name) {
      const created = await client.containers.create({
        name,
        expires_after: { anchor: 'last_active_at', minutes: 1 },
      });
      await age([created.id], 2);
      return created;
    },
    // Idempotent: a test may stop it early (a restart) and the fixture dispose it again.
    [Symbol.asyncDispose]: () => (disposed ??= dispose()),
  };

  async function dispose(): Promise<void> {
    await app.close();
    await db[Symbol.asyncDispose]();
    rmSync(dataDir, { recursive: true, force: true });
    await removeProbes(instance);
    // A restart test keeps its sandboxes for the next instance; everything else leaves none.
    if (options.keepSandboxes) return;
    const left = await runtime.listManaged();
    await Promise.all(left.map((s) => runtime.remove(s.containerId)));
    if ((await runtime.listManaged()).length > 0)
      throw new Error(`sandboxes of ${instance} remain`);
  }
}

/** The JSON body of a call that must answer 200; otherwise throws with what it answered. */
export async function okJson<T>(res: Response, what: string): Promise<T> {
  const body = await res.json();
  if (res.status !== 200)
    throw new Error(`${what} answered ${res.status}: ${JSON.stringify(body)}`);
  return body as T;
}

type HostConfig = NonNullable<Awaited<ReturnType<typeof inspectSandbox>>>['HostConfig'];

/**
 * SANDBOX.md's baseline on Docker's side, for every way a sandbox comes to be (cold or claimed
 * from the warm pool): the limit as memory and swap, no capabilities, no privilege gain, default
 * seccomp, no network but loopback, caps on processes and CPU, an init, a read-only root, no binds,
 * and no mounts but the read-only ones of Berth's socket directories (the files channel's, and the
 * egress proxy's for allowlist sandboxes).
 */
export function expectHardened(host: HostConfig, memoryBytes: number): void {
  expect(host.Memory).toBe(memoryBytes);
  expect(host.MemorySwap).toBe(memoryBytes);
  expect(host.CapDrop).toEqual(['ALL']);
  expect(host.SecurityOpt).toContain('no-new-privileges:true');
  expect(host.SecurityOpt ?? []).not.toContain('seccomp=unconfined');
  expect(host.Privileged).toBe(false);
  expect(host.NetworkMode).toBe('none');
  expect(host.PidsLimit).toBeGreaterThan(0);
  expect(host.NanoCpus).toBeGreaterThan(0);
  expect(host.Init).toBe(true);
  expect(host.ReadonlyRootfs).toBe(true);
  expect(host.Ulimits).toEqual(
    expect.arrayContaining([expect.objectContaining({ Name: 'nofile' })]),
  );
  expect(host.Binds ?? []).toEqual([]);
  for (const mount of host.Mounts ?? [])
    expect(mount).toMatchObject({
      Type: 'bind',
      Target: expect.stringMatching(/^\/run\/berth-(files|egress)$/),
      ReadOnly: true,
    });
}

/** Polls every 50 ms until `check` holds, for what happens in the background; fails past `ms`. */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  ms = 90_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One scrape of an instance's /metrics as `name{labels}` → value. */
export async function scrapeMetrics(url: string, token: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The `error` of the OpenAI error envelope a call answered, typed; the caller asserts on it. */
export async function errorOf(res: Response): Promise<ErrorEnvelope['error']> {
  return ((await res.json()) as ErrorEnvelope).error;
}

/** Runs `pnpm keys …` (services/api/src/cli/keys.ts) against a database, as an operator would. */
export function keysCli(
  databaseUrl: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(
    process.execPath,
    ['--conditions=development', '--import', 'tsx', 'services/api/src/cli/keys.ts', ...args],
    {
      cwd: fileURLToPath(new URL('../../../', import.meta.url)),
      env: { ...process.env, DATABASE_URL: databaseUrl, NODE_ENV: 'test' },
    },
  );
}

type OnCleanup = (cleanup: () => void | Promise<void>) => void;

/** Starts a Berth (see startBerth) and registers its disposal with a fixture's cleanup. */
export async function startBerthFor(
  onCleanup: OnCleanup,
  env: Record<string, string> = {},
  options: BerthOptions = {},
): Promise<RunningBerth> {
  const berth = await startBerth(env, options);
  onCleanup(() => berth[Symbol.asyncDispose]());
  return berth;
}

/* eslint-disable no-empty-pattern -- vitest reads a fixture's dependencies from its first
   parameter, which must be a destructuring pattern; `{}` says "none". */

/**
 * The settings that make successive Berths one deployment: a database, a sandbox label instance,
 * an egress directory and a bootstrap key, all outliving any one Berth process (a restart test).
 */
export interface Deployment {
  env: {
    DATABASE_URL: string;
    BERTH_INSTANCE: string;
    BERTH_EGRESS_DIR: string;
    BERTH_BOOTSTRAP_API_KEY: string;
  };
  egressDir: string;
}

/**
 * Settings for a Berth whose tests look into expired containers' sandboxes: its reaper ticks
 * once a year instead of every 5 s, so an expired sandbox stays until a test reaps it
 * (berth.jobs.reap) rather than vanishing under a `docker exec` at a random moment.
 */
export const REAP_BY_HAND = { BERTH_REAPER_CRON: '0 0 0 1 1 *' } as const;

/**
 * The testkit's `test` (database, sandboxes, dockerProxy) with:
 * - `berthWith`: starts a Berth of this test's own with the given settings (see startBerth);
 *   every one it started is disposed after the test, the last started first, pass or fail.
 * - `deployment`: settings for Berths that restart over one deployment (see Deployment); named
 *   before `berthWith`, it outlives them. Sandboxes a kept instance left are removed at the end.
 */
export const test = base
  .extend('deployment', async ({ database }, { onCleanup }): Promise<Deployment> => {
    const egressDir = mkdtempSync(join(tmpdir(), 'berth-deployment-'));
    const instance = `d${randomBytes(5).toString('hex')}`;
    onCleanup(async () => {
      const runtime = labelledRuntime(instance);
      for (const s of await runtime.listManaged()) await runtime.remove(s.containerId);
      rmSync(egressDir, { recursive: true, force: true });
    });
    return {
      egressDir,
      env: {
        DATABASE_URL: database.url,
        BERTH_INSTANCE: instance,
        BERTH_EGRESS_DIR: egressDir,
        BERTH_BOOTSTRAP_API_KEY: `sk-test-${randomBytes(16).toString('hex')}`,
      },
    };
  })
  .extend('berthWith', async ({}, { onCleanup }) => {
    const started: RunningBerth[] = [];
    onCleanup(async () => {
      const errors: unknown[] = [];
      for (const berth of started.reverse())
        await berth[Symbol.asyncDispose]().catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw errors[0];
    });
    return async (env: Record<string, string> = {}, options: BerthOptions = {}) => {
      const berth = await startBerth(env, options);
      started.push(berth);
      return berth;
    };
  });

/**
 * `test` with a `berth` fixture: one running Berth (see startBerth) with these settings, shared
 * by the tests of one file, booted before the first test (under the hook timeout, not a test's)
 * and disposed when the file ends (failing the file if a sandbox remained).
 */
export function berthTest(env: Record<string, string> = {}, options: BerthOptions = {}) {
  const fileTest = test.extend('berth', { scope: 'file' }, ({}, { onCleanup }) =>
    startBerthFor(onCleanup, env, options),
  );
  fileTest.beforeAll(async ({ berth: _ }) => {});
  return fileTest;
}

/**
 * berthTest with a `containerId` fixture too: one running container named `name`, shared by the
 * file's tests like its Berth, created before the first test.
 */
export function containerTest(
  name: string,
  env: Record<string, string> = {},
  options: BerthOptions = {},
) {
  const fileTest = berthTest(env, options).extend(
    'containerId',
    { scope: 'file' },
    async ({ berth }) => (await berth.client.containers.create({ name })).id,
  );
  fileTest.beforeAll(async ({ containerId: _ }) => {});
  return fileTest;
}
