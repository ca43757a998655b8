import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeAsync, root } from './compose-cli.js';
import { testDocker } from '@berth/testkit';

// The README's Docker Compose section, step by step: provisioning builds the images and writes
// .env (image references, bootstrap key, the socket's group, the egress directory), then plain
// compose commands, with nothing exported but what makes this stack distinct from others.
// A cold run builds the offline Node image and the API image; a warm one finds both up to date.
const BUILD_TIMEOUT_MS = 20 * 60_000;
const HEALTH_TIMEOUT_MS = 120_000;

const project = `berth-ship-compose-${randomBytes(4).toString('hex')}`;
const docker = testDocker.docker;
let env: Record<string, string>;
let baseURL: string;
let apiKey: string;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

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

/** A setting as .env has it: what the docs tell the operator to look up. */
const dotenv = (key: string): string => {
  const line = readFileSync(join(root, '.env'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}=`));
  if (!line) throw new Error(`.env has no ${key}`);
  return line.slice(key.length + 1);
};

const run = (args: string[], timeoutMs = 300_000) =>
  composeAsync(['-p', project, ...args], env, timeoutMs);
// Never blocking: a client's keep-alive socket the server closed while the loop was stuck would
// otherwise be reused by the next request, which then fails with 'other side closed'.
const apiContainerId = async () => (await run(['ps', '-q', 'api'], 30_000)).trim();

/** The image's HEALTHCHECK says healthy, and every dependency answers. */
async function waitForHealthy(): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const state = (await docker.getContainer(await apiContainerId()).inspect()).State;
      last = `health ${state.Health?.Status ?? 'none'}`;
      if (state.Health?.Status === 'healthy') {
        const res = await fetch(`${baseURL}/readyz`, { signal: AbortSignal.timeout(3_000) });
        if (res.ok) return;
        last = `${res.status} ${await res.text()}`;
      }
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the API was not healthy within ${HEALTH_TIMEOUT_MS} ms (${last})`);
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function exec(id: string, command: string) {
  const res = await fetch(`${baseURL}/v1/containers/${id}/exec`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { stdout: string; exit_code: number };
}

beforeAll(async () => {
  await provision();
  apiKey = dotenv('BERTH_BOOTSTRAP_API_KEY');
  env = {
    BERTH_PORT: String(await freePort()),
    // This stack's reconciler must not take another deployment's sandboxes for orphans.
    BERTH_INSTANCE: project,
  };
  baseURL = `http://127.0.0.1:${env.BERTH_PORT}`;
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (!env) return;
  await run(['down', '-v', '--remove-orphans', '-t', '5'], 120_000);
  // Sandboxes belong to the host's engine, not to the compose project: remove any left behind.
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`org.berth.instance=${project}`] },
  });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  // The warm pool's idle sandboxes outlive `down` by design (the next `up` claims or reconciles
  // them; README, Docker Compose); every container the test made must be gone.
  expect(
    left.filter((c) => !c.Labels['org.berth.pool-slot']).map((c) => c.Names),
    'sandboxes left behind',
  ).toEqual([]);
}, 150_000);

describe('docker compose deploy', () => {
  it(
    'serves the SDK end to end, allowlist included, and keeps every container and file across a restart and a recreate',
    async () => {
      try {
        await run(['up', '-d']);
        await waitForHealthy();
        const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });

        // The build that runs says what it is.
        const health = await fetch(`${baseURL}/healthz`);
        const { version } = JSON.parse(
          readFileSync(join(root, 'services/api/package.json'), 'utf8'),
        ) as { version: string };
        expect(await health.json()).toMatchObject({ status: 'ok', version });
        expect(health.headers.get('x-berth-version')).toBe(version);

        // create → exec → upload → download, on a plain and an allowlist container.
        const plain = await client.containers.create({ name: 'compose-plain' });
        const allow = await client.containers.create({
          name: 'compose-allowlist',
          network_policy: { type: 'allowlist', allowed_domains: ['allowed.test'] },
        });
        expect([plain.status, allow.status]).toEqual(['running', 'running']);
        expect(await exec(plain.id, 'echo hi; id -u')).toMatchObject({ exit_code: 0 });
        // The proxy (in the API container) answers through the socket in the egress directory:
        // a host off the allowlist is refused there, without leaving the machine.
        expect(
          (await exec(allow.id, "curl -s -o /dev/null -w '%{http_code}' http://denied.test/"))
            .stdout,
        ).toBe('403');

        const data = randomBytes(256 * 1024 + 3);
        const uploaded = await client.containers.files.create(plain.id, {
          file: await toFile(data, 'payload.bin'),
        });
        const download = async () =>
          sha256(
            new Uint8Array(
              await (
                await client.containers.files.content.retrieve(uploaded.id, {
                  container_id: plain.id,
                })
              ).arrayBuffer(),
            ),
          );
        expect(await download()).toBe(sha256(data));
        const blob = randomBytes(3 * 1024 * 1024 + 13);
        const file = await client.files.create({
          file: await toFile(blob, 'blob.bin'),
          purpose: 'user_data',
        });
        const doomed = await client.containers.create({ name: 'compose-doomed' });
        await client.containers.delete(doomed.id);

        // Restarted, then recreated from its image: the same containers, listed and usable.
        const first = await apiContainerId();
        for (const step of [
          ['restart', '-t', '10', 'api'],
          ['up', '-d', '--force-recreate', '--no-deps', 'api'],
        ]) {
          await run(step);
          await waitForHealthy();
          const listed = [];
          for await (const c of client.containers.list()) listed.push(c.id);
          expect(listed.sort(), step.join(' ')).toEqual([plain.id, allow.id].sort());
          expect((await exec(plain.id, `cat /mnt/data/payload.bin | sha256sum`)).stdout).toMatch(
            sha256(data),
          );
          expect(await download()).toBe(sha256(data));
          expect(
            (await exec(allow.id, "curl -s -o /dev/null -w '%{http_code}' http://denied.test/"))
              .stdout,
          ).toBe('403');
          const content = new Uint8Array(await (await client.files.content(file.id)).arrayBuffer());
          expect(sha256(content)).toBe(sha256(blob));
        }
        expect(await apiContainerId(), 'a new API container').not.toBe(first);

        for (const c of [plain, allow]) await client.containers.delete(c.id);
        const remaining = [];
        for await (const c of client.containers.list()) remaining.push(c.id);
        expect(remaining).toEqual([]);

        // Logs: one JSON line each (no multi-line stack traces), health probes not at info,
        // request paths with their /v1 mount.
        const logs = (await run(['logs', '--no-color', 'api'], 30_000))
          .split('\n')
          // Each line of the service carries compose's `<container> | ` prefix; compose's own
          // lines (v1's "Attaching to …") don't.
          .filter((l) => l.includes('|'))
          .map((l) => l.replace(/^[^|]*\|\s?/, '').trim())
          .filter(Boolean);
        expect(logs.filter((l) => !l.startsWith('{'))).toEqual([]);
        const parsed = logs.map((l) => JSON.parse(l) as { path?: string; msg: string });
        expect(parsed.filter((l) => l.path === '/healthz')).toEqual([]);
        expect(parsed.some((l) => l.path === '/v1/containers')).toBe(true);
        expect(parsed.filter((l) => l.path?.startsWith('/containers'))).toEqual([]);
      } catch (error) {
        // The API's own words make a failure here readable without re-running it.
        const logs = await run(['logs', '--tail', '50', 'api'], 30_000).catch((e: unknown) =>
          String(e),
        );
        throw new Error(`${String(error)}\n--- api logs ---\n${logs}`, { cause: error });
      }
    },
    HEALTH_TIMEOUT_MS * 4 + 600_000,
  );
});
