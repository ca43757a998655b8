import net from 'node:net';
import { APIError } from 'openai';
import { describe, expect } from 'vitest';
import { startBerth, test as it, type RunningBerth } from './fixtures.js';

/** Never crash, never hang: a wedged Docker call, a huge argument, clients that hang up early. */
const execJson = (berth: RunningBerth, id: string, body: unknown) =>
  berth.postJson(`/v1/containers/${id}/exec`, body);

/**
 * Creates a container under a short Docker deadline. A loaded host (CI runs the suites side by
 * side on two cores) can take longer than that to start a sandbox; the create then answers 504
 * "Nothing was kept; please retry", as it should, and this retries it as a client would. These
 * tests are about a wedged sandbox, not about how fast one starts.
 */
async function createUnderDeadline(berth: RunningBerth, name: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await berth.client.containers.create({ name });
    } catch (error) {
      if (attempt === 3 || !(error instanceof APIError && error.status === 504)) throw error;
    }
  }
}

/** Requests about one sandbox (by its Docker name), and execs started in it. */
const about = (id: string) => (r: { path: string }) => r.path.includes(`berth-${id}`);

describe('one huge argument', () => {
  it('refuses a 100 KB program path with 400, and the container keeps working', async ({
    berthWith,
  }) => {
    const berth = await berthWith();
    const { id } = await berth.client.containers.create({ name: 'argv' });
    const res = await execJson(berth, id, { command: ['a'.repeat(100_000)] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', param: 'command.0' },
    });
    // A 100 KB argument that is not the program runs; arguments past the kernel's limits don't.
    const ok = await execJson(berth, id, {
      command: ['sh', '-c', 'echo ${#0}', 'b'.repeat(100_000)],
    });
    expect(await ok.json()).toMatchObject({ exit_code: 0, stdout: '100000\n' });
    const tooMuch = await execJson(berth, id, {
      command: ['true', ...Array.from({ length: 12 }, () => 'c'.repeat(100_000))],
    });
    expect(tooMuch.status).toBe(400);
    const env = await execJson(berth, id, { command: 'true', env: { BIG: 'd'.repeat(131_072) } });
    expect(env.status).toBe(400);
    expect(await env.json()).toMatchObject({ error: { param: 'env.BIG' } });
    const after = await execJson(berth, id, { command: 'echo fine' });
    expect(await after.json()).toMatchObject({ stdout: 'fine\n' });
  });
});

describe('a wedged sandbox', () => {
  it('costs one deadline: 504, marked failed with a reason, slot freed, the rest unaffected', async ({
    dockerProxy: docker,
    berthWith,
  }) => {
    const berth = await berthWith({
      BERTH_DOCKER_SOCKET: docker.socketPath,
      BERTH_DOCKER_TIMEOUT_MS: '4000',
      BERTH_EXEC_MAX_CONCURRENT: '1',
      BERTH_METRICS_TOKEN: 'metrics-token-for-the-wedge-test',
    });
    const wedged = (await createUnderDeadline(berth, 'wedged')).id;
    const fine = (await createUnderDeadline(berth, 'fine')).id;
    docker.stall(about(wedged));

    const started = Date.now();
    const res = await execJson(berth, wedged, { command: 'true' });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({
      error: { type: 'server_error', code: 'container_unresponsive' },
    });
    expect(Date.now() - started).toBeLessThan(4000 + 4000);
    const row = await berth.client.containers.retrieve(wedged);
    expect(row.status).toBe('failed');
    const { rows } = await berth.pool.query<{ status_reason: string }>(
      'select status_reason from containers where id = $1',
      [wedged],
    );
    expect(rows[0]!.status_reason).toMatch(/not responding/);
    // Reported as a metric too (and the metrics route wants its token).
    expect((await fetch(`${berth.url}/metrics`)).status).toBe(401);
    const scraped = await (
      await fetch(`${berth.url}/metrics`, {
        headers: { authorization: 'Bearer metrics-token-for-the-wedge-test' },
      })
    ).text();
    expect(scraped).toMatch(/^berth_sandboxes_unresponsive_total 1$/m);

    // Its file calls answer at once now (the container is failed), never hang.
    expect((await berth.api(`/v1/containers/${wedged}/files`)).status).toBe(400);
    // The other container is untouched, and the reconciler finishes while the wedge lasts.
    expect(await (await execJson(berth, fine, { command: 'echo ok' })).json()).toMatchObject({
      stdout: 'ok\n',
    });
    const reconciled = Date.now();
    await berth.jobs.reconcile();
    expect(Date.now() - reconciled).toBeLessThan(20_000);

    // A delete while wedged keeps the row visible (failed), never hidden with a lingering sandbox.
    const del = await berth.api(`/v1/containers/${wedged}`, { method: 'DELETE' });
    expect(del.status).toBe(504);
    expect((await berth.client.containers.retrieve(wedged)).status).toBe('failed');

    // When Docker answers again, the reconciler removes it.
    docker.release();
    await berth.jobs.reconcile();
    // The SDK types delete as void; Berth answers the deleted object, which the SDK hands back.
    const deleted = (await berth.client.containers.delete(wedged)) as unknown as {
      deleted: boolean;
    };
    expect(deleted.deleted).toBe(true);
  });

  it('starts and answers while a sandbox is wedged, without waiting on it', async ({
    dockerProxy: docker,
    berthWith,
  }) => {
    const first = await startBerth({}, { keepSandboxes: true });
    const { id } = await first.client.containers.create({ name: 'left-wedged' });
    const env = { BERTH_INSTANCE: first.instance, DATABASE_URL: first.databaseUrl };
    await first[Symbol.asyncDispose]().catch(() => {});
    void env;

    docker.stall(about(id));
    const started = Date.now();
    const second = await berthWith({
      BERTH_DOCKER_SOCKET: docker.socketPath,
      BERTH_DOCKER_TIMEOUT_MS: '4000',
      BERTH_INSTANCE: first.instance,
    });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    const c = await createUnderDeadline(second, 'new');
    expect(c.status).toBe('running');
    docker.release();
    // Clean up the sandbox the first instance left.
    await second.runtime.remove(id);
  });
});

/** A client that reads part (or all) of a response and hangs up, as curl and browsers do. */
function hangUp(url: string, path: string, key: string, readBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`,
      );
    });
    let got = 0;
    socket.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= readBytes) socket.destroy();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', () => resolve(got));
  });
}

describe('clients that hang up', () => {
  it(
    'survives early closes on every download and stream route',
    { timeout: 120_000 },
    async ({ berthWith }) => {
      const berth = await berthWith();
      const { id } = await berth.client.containers.create({ name: 'downloads' });
      const big = Buffer.alloc(8 * 1024 * 1024, 1);
      const cfile = await berth.client.containers.files.create(id, {
        file: new File([big], 'big.bin'),
      });
      const file = await berth.client.files.create({
        file: new File([big], 'big.bin'),
        purpose: 'user_data',
      });
      for (let round = 0; round < 2; round++) {
        for (const readBytes of [1, 64 * 1024, 20 * 1024 * 1024]) {
          await hangUp(
            berth.url,
            `/v1/containers/${id}/files/${cfile.id}/content`,
            berth.apiKey,
            readBytes,
          );
          await hangUp(berth.url, `/v1/files/${file.id}/content`, berth.apiKey, readBytes);
        }
      }
      // Streaming exec: hang up mid-stream.
      const controller = new AbortController();
      const res = await berth.api(`/v1/containers/${id}/exec`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          command: 'for i in $(seq 1 50); do echo $i; sleep 0.05; done',
          stream: true,
        }),
        signal: controller.signal,
      });
      await res.body!.getReader().read();
      controller.abort();
      await new Promise((r) => setTimeout(r, 500));

      // Still up, and the bytes are still right.
      expect((await fetch(`${berth.url}/healthz`)).status).toBe(200);
      const back = Buffer.from(
        await (
          await berth.client.containers.files.content.retrieve(cfile.id, { container_id: id })
        ).arrayBuffer(),
      );
      expect(back.equals(big)).toBe(true);
    },
  );
});
