import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InternalServerError, RateLimitError } from 'openai';
import { describe, expect, onTestFinished } from 'vitest';
import type { ErrorEnvelope } from '@berth/contracts';
import { SocketSwitch } from '@berth/testkit';
import { test as base } from './fixtures.js';

/** Switches between Berth and a dependency, cut and restored by the test; all down afterwards. */
/* eslint-disable no-empty-pattern -- a fixture without dependencies destructures nothing. */
const it = base.extend('switches', async ({}, { onCleanup }) => {
  const made: SocketSwitch[] = [];
  onCleanup(async () => {
    for (const s of made) await s.down();
  });
  return (...args: ConstructorParameters<typeof SocketSwitch>) => {
    const s = new SocketSwitch(...args);
    made.push(s);
    return s;
  };
});

describe('dependencies going away', () => {
  it('answers 503 with Retry-After while Docker is unreachable, and recovers by itself', async ({
    switches,
    berthWith,
  }) => {
    const socketDir = mkdtempSync(join(tmpdir(), 'berth-docker-'));
    onTestFinished(() => rmSync(socketDir, { recursive: true, force: true }));
    const socketPath = join(socketDir, 'docker.sock');
    const docker = switches({ path: socketPath }, { path: '/var/run/docker.sock' });
    await docker.up();
    const berth = await berthWith({ BERTH_DOCKER_SOCKET: socketPath });

    await docker.down();
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'while-down' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await res.json()) as ErrorEnvelope;
    expect(body.error).toMatchObject({ type: 'server_error' });
    expect(JSON.stringify(body)).not.toMatch(/sock|\/var\/|at .*\.ts/);
    expect((await fetch(`${berth.url}/readyz`)).status).toBe(503);
    // Nothing half-made: the failed create left no row.
    expect((await berth.client.containers.list()).data).toEqual([]);

    await docker.up();
    const c = await berth.client.containers.create({ name: 'after-recovery' });
    expect(c.status).toBe('running');
    expect((await fetch(`${berth.url}/readyz`)).status).toBe(200);
  });

  it('answers 503 while Postgres is unreachable, and recovers by itself', async ({
    switches,
    berthWith,
  }) => {
    const direct = await berthWith();
    const url = new URL(direct.databaseUrl);
    const pg = switches(
      { host: '127.0.0.1', port: 0 },
      { host: url.hostname, port: Number(url.port) },
    );
    await pg.up();
    url.host = `127.0.0.1:${pg.address().port}`;
    const berth = await berthWith({ DATABASE_URL: url.toString() });

    await pg.down();
    const error = await berth.client.containers.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).status).toBe(503);
    expect((error as InternalServerError).headers.get('retry-after')).toMatch(/^\d+$/);

    await pg.up();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await berth.client.containers.list().then(
        () => true,
        () => false,
      );
      if (ok || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await expect(berth.client.containers.list()).resolves.toMatchObject({ data: [] });
  });

  it('caps live containers per project with 429 insufficient_quota', async ({ berthWith }) => {
    const berth = await berthWith({ BERTH_MAX_CONTAINERS_PER_PROJECT: '2' });
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((i) => berth.client.containers.create({ name: `c${i}` })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(2);
    for (const e of refused) {
      expect(e).toBeInstanceOf(RateLimitError);
      expect((e as RateLimitError).type).toBe('insufficient_quota');
      // Retrying can't succeed until something is deleted: the SDKs are told not to.
      expect((e as RateLimitError).headers.get('x-should-retry')).toBe('false');
      expect((e as RateLimitError).headers.get('retry-after')).toBeNull();
    }
    expect((await berth.runtime.listManaged()).length).toBe(2);
  });
});
