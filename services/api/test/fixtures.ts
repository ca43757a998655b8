import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { test as base } from 'vitest';
import type { Pool } from '@berth/db';
import { createTestDatabase, sandboxImage } from '@berth/testkit';
import { DockerClient, DockerSandboxRuntime, defaultSandboxLimits } from '@berth/sandbox-docker';
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
  /** A second project with its own key, for isolation tests. */
  newProjectClient(): Promise<{ client: OpenAI; apiKey: string }>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Boots the real service (main.ts, the composition root) on a free port, against its own
 * database cloned from the migrated template and its own sandbox label instance. Disposal shuts
 * it down, removes every sandbox of that instance, and fails if any remained.
 */
export async function startBerth(
  env: Record<string, string> = {},
  options: {
    keepSandboxes?: boolean;
    /** Collects every log line (JSON) instead of stdout. */ logLines?: string[];
  } = {},
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
  const runtime = new DockerSandboxRuntime({
    ...defaultSandboxLimits,
    client: new DockerClient(),
    image: sandboxImage(),
    instance,
  });
  const clientFor = (key: string) =>
    new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });

  return {
    url,
    apiKey,
    client: clientFor(apiKey),
    instance,
    databaseUrl: db.url,
    dataDir,
    pool: db.pool,
    jobs: app.jobs!,
    runtime,
    api: (path, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${apiKey}`, ...(init.headers ?? {}) },
      }),
    async newProjectClient() {
      const { generateApiKey } = await import('@berth/core');
      const { PgApiKeyStore } = await import('@berth/db');
      const keys = new PgApiKeyStore(db.pool);
      const projectId = await keys.ensureProject(`p-${randomBytes(4).toString('hex')}`);
      const key = generateApiKey();
      await keys.create({ projectId, name: 'test', prefix: key.prefix, hash: key.hash });
      return { client: clientFor(key.key), apiKey: key.key };
    },
    async [Symbol.asyncDispose]() {
      await app.close();
      await db[Symbol.asyncDispose]();
      rmSync(dataDir, { recursive: true, force: true });
      // A restart test keeps its sandboxes for the next instance; everything else leaves none.
      if (options.keepSandboxes) return;
      const left = await runtime.listManaged();
      await Promise.all(left.map((s) => runtime.remove(s.containerId)));
      if ((await runtime.listManaged()).length > 0)
        throw new Error(`sandboxes of ${instance} remain`);
    },
  };
}

/* eslint-disable no-empty-pattern -- vitest reads a fixture's dependencies from its first
   parameter, which must be a destructuring pattern; `{}` says "none". */

/**
 * vitest's `test` with a `berth` fixture: one running Berth (see startBerth) with these settings,
 * shared by the tests of one file, started when a test or a `beforeAll` first asks for it and
 * disposed when the file ends (failing the file if a sandbox remained).
 */
export function berthTest(env: Record<string, string> = {}) {
  return base.extend('berth', { scope: 'file' }, async ({}, { onCleanup }) => {
    const berth = await startBerth(env);
    onCleanup(() => berth[Symbol.asyncDispose]());
    return berth;
  });
}
