import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, composeAsync, root } from './compose-cli.js';

// A cold run builds the offline Node image and the API image (about a minute on two cores);
// a warm one finds both up to date by their context hash.
const BUILD_TIMEOUT_MS = 15 * 60_000;
const HEALTH_TIMEOUT_MS = 120_000;

const project = `berth-compose-test-${randomBytes(4).toString('hex')}`;
const apiKey = `sk-compose-${randomBytes(16).toString('hex')}`;
let env: Record<string, string>;
let baseURL: string;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** The documented build: provisioning with the API image (a no-op when its inputs are unchanged). */
const provision = (): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile(
      'bash',
      ['infra/provision.sh', '--with-api-image'],
      { cwd: root, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`provisioning failed:\n${stdout}\n${stderr}`, { cause: error }))
          : resolve(),
    );
  });

// As the README starts it: the image references provisioning chose, the rest from the environment.
const run = (args: string[], timeoutMs: number) =>
  composeAsync(['-p', project, '--env-file', '.berth/images.env', ...args], env, timeoutMs);
const up = (args: string[]) => run(['up', '-d', '--no-build', ...args], 300_000);
const apiContainerId = () =>
  compose(['-p', project, '--env-file', '.berth/images.env', 'ps', '-q', 'api'], env).trim();

async function waitForReady(): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseURL}/readyz`, { signal: AbortSignal.timeout(3_000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the API was not ready within ${HEALTH_TIMEOUT_MS} ms (${last})`);
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  await provision();
  env = {
    BERTH_BOOTSTRAP_API_KEY: apiKey,
    BERTH_PORT: String(await freePort()),
    // This stack's reconciler must not take another deployment's sandboxes for orphans.
    BERTH_INSTANCE: project,
  };
  baseURL = `http://127.0.0.1:${env.BERTH_PORT}`;
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (!env) return;
  await run(['down', '-v', '--remove-orphans', '-t', '5'], 120_000);
}, 150_000);

describe('docker compose redeploy', () => {
  it(
    'keeps every Files API blob when the API container is recreated from its image',
    async () => {
      try {
        await up([]);
        await waitForReady();
        const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });

        const blobs = [1, 64 * 1024 + 7, 3 * 1024 * 1024 + 13].map((size) => randomBytes(size));
        const uploaded: { id: string; sha: string; bytes: number }[] = [];
        for (const [i, data] of blobs.entries()) {
          const file = await client.files.create({
            file: await toFile(data, `blob-${i}.bin`),
            purpose: 'user_data',
          });
          uploaded.push({ id: file.id, sha: sha256(data), bytes: data.length });
        }

        const before = apiContainerId();
        await up(['--force-recreate', '--no-deps', 'api']);
        expect(apiContainerId(), 'a new API container').not.toBe(before);
        await waitForReady();

        for (const { id, sha, bytes } of uploaded) {
          expect(await client.files.retrieve(id)).toMatchObject({ id, bytes });
          const content = new Uint8Array(await (await client.files.content(id)).arrayBuffer());
          expect({ id, bytes: content.length, sha: sha256(content) }).toEqual({ id, bytes, sha });
        }
      } catch (error) {
        // The API's own words make a failure here readable without re-running it.
        const logs = await run(['logs', '--tail', '50', 'api'], 30_000)
          .then((out) => out)
          .catch((e: unknown) => String(e));
        throw new Error(`${String(error)}\n--- api logs ---\n${logs}`, { cause: error });
      }
    },
    HEALTH_TIMEOUT_MS * 2 + 600_000,
  );
});
