import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { removeProbes, testDocker } from '@berth/testkit';

const root = fileURLToPath(new URL('../../', import.meta.url));
const docker = testDocker.docker;
const suffix = randomBytes(4).toString('hex');
const devPostgres = `berth-smoke-${suffix}`;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

afterAll(async () => {
  // The start command runs with the default warm pool: its idle sandboxes outlive the process by
  // design (README), so the smoke run removes them, and any engine probe, by its instance.
  const instance = `smoke${suffix}`;
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`org.berth.instance=${instance}`] },
  });
  await removeProbes(instance);
  await Promise.all(
    left.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {}),
    ),
  );
  await docker
    .getContainer(devPostgres)
    .remove({ force: true, v: true })
    .catch(() => {});
  await docker
    .getVolume(`${devPostgres}-data`)
    .remove()
    .catch(() => {});
});

describe("the README's start command (bash infra/up.sh)", () => {
  it('brings Berth up with its own Postgres, serves the API, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const apiKey = `sk-smoke-${randomBytes(16).toString('hex')}`;
    const child = spawn('bash', ['infra/up.sh'], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        DATABASE_URL: '',
        PORT: String(port),
        BERTH_DEV_POSTGRES_NAME: devPostgres,
        BERTH_INSTANCE: `smoke${suffix}`,
        BERTH_BOOTSTRAP_API_KEY: apiKey,
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 120_000;
      while (
        !output.includes('berth listening on') &&
        Date.now() < deadline &&
        child.exitCode === null
      ) {
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(output).toContain(`berth listening on http://127.0.0.1:${port}`);
      expect(output).toContain(`starting a local Postgres: container ${devPostgres}`);

      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(await ready.json()).toEqual({
        status: 'ok',
        checks: { postgres: { status: 'ok' }, docker: { status: 'ok' } },
      });
      const client = new OpenAI({ apiKey, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const c = await client.containers.create({ name: 'smoke' });
      expect(c.status).toBe('running');
      await client.containers.delete(c.id);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('shut down');
  }, 180_000);
});
