import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InternalServerError, RateLimitError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startBerth, type RunningBerth } from './fixtures.js';

/** A proxy we can cut and restore, standing between Berth and one of its dependencies. */
class Switch {
  #server: net.Server | null = null;
  readonly #sockets = new Set<net.Socket>();
  constructor(
    private listen: net.ListenOptions,
    private readonly target: net.NetConnectOpts,
  ) {}
  async up(): Promise<void> {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.listen, resolve));
    // Come back on the same port after a cut, as a restarted server would.
    if (this.listen.port === 0) this.listen = { ...this.listen, port: this.address().port };
  }
  address(): net.AddressInfo {
    return this.#server!.address() as net.AddressInfo;
  }
  async down(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
    this.#server = null;
  }
}

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length) await disposers.pop()!();
});

describe('dependencies going away', () => {
  it('answers 503 with Retry-After while Docker is unreachable, and recovers by itself', async () => {
    const socketDir = mkdtempSync(join(tmpdir(), 'berth-docker-'));
    const socketPath = join(socketDir, 'docker.sock');
    const docker = new Switch({ path: socketPath }, { path: '/var/run/docker.sock' });
    await docker.up();
    disposers.push(async () => rmSync(socketDir, { recursive: true, force: true }));
    disposers.push(() => docker.down());
    const berth: RunningBerth = await startBerth({ BERTH_DOCKER_SOCKET: socketPath });
    disposers.push(() => berth[Symbol.asyncDispose]());

    await docker.down();
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'while-down' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = await res.json();
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

  it('answers 503 while Postgres is unreachable, and recovers by itself', async () => {
    const direct = await startBerth();
    disposers.push(() => direct[Symbol.asyncDispose]());
    const url = new URL(direct.databaseUrl);
    const pg = new Switch(
      { host: '127.0.0.1', port: 0 },
      { host: url.hostname, port: Number(url.port) },
    );
    await pg.up();
    disposers.push(() => pg.down());
    url.host = `127.0.0.1:${pg.address().port}`;
    const berth = await startBerth({ DATABASE_URL: url.toString() });
    disposers.push(() => berth[Symbol.asyncDispose]());

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

  it('caps live containers per project with 429 insufficient_quota', async () => {
    const berth = await startBerth({ BERTH_MAX_CONTAINERS_PER_PROJECT: '2' });
    disposers.push(() => berth[Symbol.asyncDispose]());
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
