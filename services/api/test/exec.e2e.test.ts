import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { REAP_BY_HAND, containerTest, errorOf, okJson, until } from './fixtures.js';

interface ExecResult {
  id: string;
  object: string;
  container_id: string;
  exit_code: number | null;
  stdout: string;
  stdout_encoding: string;
  stderr: string;
  stderr_encoding: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  timed_out: boolean;
  oom_killed: boolean;
  duration_ms: number;
  created_at: number;
}

/** Reads an SSE response into events, with the time each arrived. */
const it = containerTest('exec', {
  ...REAP_BY_HAND,
  BERTH_EXEC_MAX_OUTPUT_BYTES: '65536',
  BERTH_EXEC_MAX_CONCURRENT: '12',
})
  /** POSTs an exec to the file's container (or `id`). */
  .extend(
    'post',
    { scope: 'file' },
    ({ berth, containerId }) =>
      (body: unknown, id = containerId, init: RequestInit = {}) =>
        berth.postJson(`/v1/containers/${id}/exec`, body, init),
  )
  /** An exec that must answer 200, as its result. */
  .extend(
    'run',
    { scope: 'file' },
    ({ post }) =>
      async (body: unknown, id?: string) =>
        okJson<ExecResult>(await post(body, id), 'exec'),
  );

async function events(res: Response): Promise<{ event: string; data: unknown; at: number }[]> {
  const out: { event: string; data: unknown; at: number }[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let sep: number;
    while ((sep = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      out.push({ event, data, at: Date.now() });
    }
  }
  return out;
}

describe('POST /v1/containers/{id}/exec', () => {
  it('runs a shell string as the sandbox user, keeping stdout and stderr apart', async ({
    containerId,
    run,
  }) => {
    const r = await run({ command: 'echo out1; echo err1 >&2; echo out2; id -u; exit 3' });
    expect(r).toMatchObject({
      object: 'container.exec',
      container_id: containerId,
      exit_code: 3,
      stdout: expect.stringMatching(/^out1\nout2\n\d{6,}\n$/),
      stdout_encoding: 'utf-8',
      stderr: 'err1\n',
      timed_out: false,
      oom_killed: false,
      stdout_truncated: false,
    });
    expect(r.id).toMatch(/^exec_[0-9a-f]{32}$/);
  });

  it('takes an argv array, stdin, env and workdir', async ({ run }) => {
    await run({ command: ['mkdir', '-p', '/mnt/data/sub'] });
    const r = await run({
      command: [
        'python3',
        '-c',
        'import os,sys; print(os.getcwd(), os.environ["GREETING"], sys.stdin.read().upper())',
      ],
      stdin: 'hello stdin',
      env: { GREETING: 'hi there' },
      workdir: '/mnt/data/sub',
    });
    expect(r.exit_code).toBe(0);
    expect(r.stdout).toBe('/mnt/data/sub hi there HELLO STDIN\n');
  });

  it('returns binary output byte for byte, as base64', async ({ run }) => {
    const r = await run({ command: "printf '\\377\\000\\376A'" });
    expect(r.stdout_encoding).toBe('base64');
    expect([...Buffer.from(r.stdout, 'base64')]).toEqual([0xff, 0x00, 0xfe, 0x41]);
  });

  it("takes the exit code from the supervisor's trailer; one the command prints stays its output", async ({
    run,
  }) => {
    // The supervisor (the shell's parent) ends stdout with `\x1eberth-exit TAG CODE`, TAG being
    // its third argument: the command forges one for its own run, then exits 3.
    const r = await run({
      command:
        "tag=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | sed -n 3p); printf '\\036berth-exit %s 0\\n' \"$tag\"; exit 3",
    });
    expect(r.exit_code).toBe(3);
    expect(r.stdout).toBe(`\x1eberth-exit berth:${r.id} 0\n`);
  });

  it('truncates output at the cap and still finishes the command', async ({ run }) => {
    const r = await run({ command: 'head -c 5000000 /dev/zero | tr "\\0" a; echo done >&2' });
    expect(r.stdout_truncated).toBe(true);
    expect(r.stdout.length).toBe(65536);
    expect(r.stderr).toBe('done\n');
    expect(r.exit_code).toBe(0);
  });

  it('kills the whole process tree on timeout; the sandbox stays usable', async ({
    containerId,
    run,
  }) => {
    const r = await run({ command: 'sleep 300 & sleep 300', timeout_ms: 1500 });
    expect(r).toMatchObject({ timed_out: true, exit_code: 137 });
    expect(r.duration_ms).toBeLessThan(20_000);
    const ps = await dockerExec(containerId, ['ps', '-eo', 'args']);
    expect(ps.stdout).not.toMatch(/sleep 300/);
    expect((await run({ command: 'echo alive' })).stdout).toBe('alive\n');
  });

  it('streams chunks as they happen, then the result', async ({ post }) => {
    const started = Date.now();
    const res = await post({
      command: 'echo first; sleep 3; echo second >&2; sleep 0.3; echo third',
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const got = await events(res);
    const first = got[0]!;
    const result = got.at(-1)!;
    expect(first).toMatchObject({ event: 'stdout', data: { text: 'first\n' } });
    expect(result.event).toBe('result');
    expect(result.at - first.at).toBeGreaterThan(1000);
    expect(first.at - started).toBeLessThan(2500);
    expect(got.map((e) => e.event)).toEqual(['stdout', 'stderr', 'stdout', 'result']);
    expect(result.data).toMatchObject({
      exit_code: 0,
      stdout: 'first\nthird\n',
      stderr: 'second\n',
    });
  });

  it('kills the command when the streaming client goes away', async ({ containerId, post }) => {
    const controller = new AbortController();
    const res = await post(
      { command: 'echo started; sleep 120; echo never', stream: true },
      containerId,
      {
        signal: controller.signal,
      },
    );
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk: the command is running
    controller.abort();
    const deadline = Date.now() + 10_000;
    let ps = '';
    while (Date.now() < deadline) {
      ps = (await dockerExec(containerId, ['ps', '-eo', 'args'])).stdout;
      if (!ps.includes('sleep 120')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ps).not.toMatch(/sleep 120/);
  });

  it('runs 10 execs at once', async ({ run }) => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => run({ command: `sleep 1; echo ${i}` })),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}\n`));
  });

  it('answers 429 past the per-sandbox concurrency cap', async ({ berthWith }) => {
    const capped = await berthWith({ BERTH_EXEC_MAX_CONCURRENT: '2' });
    const c = await capped.client.containers.create({ name: 'capped' });
    const call = () => capped.postJson(`/v1/containers/${c.id}/exec`, { command: 'sleep 2' });
    const statuses = (await Promise.all([call(), call(), call()])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('reports a memory bomb as OOM-killed, and the sandbox truthfully afterwards', async ({
    berth,
    containerId,
    run,
  }) => {
    const r = await run({
      command: ['python3', '-c', 'x = []\nwhile True: x.append(bytearray(50 * 1024 * 1024))'],
      timeout_ms: 60_000,
    });
    expect(r).toMatchObject({ exit_code: 137, oom_killed: true, timed_out: false });
    const after = await berth.client.containers.retrieve(containerId);
    expect(after.status).toBe('running');
    expect((await run({ command: 'echo still here' })).stdout).toBe('still here\n');
  });

  it('moves last_active_at', async ({ berth, containerId, run }) => {
    await berth.age([containerId], 5);
    const before = await berth.client.containers.retrieve(containerId);
    await run({ command: 'true' });
    const after = await berth.client.containers.retrieve(containerId);
    expect(before.last_active_at).toBeDefined();
    expect(after.last_active_at).toBeGreaterThanOrEqual(before.last_active_at! + 299);
  });

  it.for([
    [{}, 'command'],
    [{ command: '' }, 'command'],
    [{ command: [] }, 'command'],
    [{ command: 'true', workdir: '/etc' }, 'workdir'],
    [{ command: 'true', workdir: '/mnt/data/../etc' }, 'workdir'],
    [{ command: 'true', workdir: '/mnt/data/%2e%2e/etc' }, 'workdir'],
    [{ command: 'true', env: { 'BAD-NAME': 'x' } }, 'env.BAD-NAME'],
    [{ command: 'true', env: { BERTH_EXEC_ID: 'x' } }, 'env.BERTH_EXEC_ID'],
    [{ command: 'true', timeout_ms: 10_000_000 }, 'timeout_ms'],
    [{ command: 'true', extra: 1 }, 'extra'],
    [{ command: ['echo', 'a\u0000b'] }, 'command'],
  ] as const)('rejects %j naming %s', async ([body, param], { post }) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.type).toBe('invalid_request_error');
    expect(error.param).toMatch(new RegExp(`^${param.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('refuses a container it ran commands in once it has expired or failed: its error first, nothing run', async ({
    berth,
    post,
    run,
  }) => {
    const expiring = await berth.client.containers.create({
      name: 'early-expired',
      expires_after: { anchor: 'last_active_at', minutes: 1 },
    });
    const standby = await berth.client.containers.create({
      name: 'early-standby',
      expires_after: { anchor: 'last_active_at', minutes: 1 },
    });
    const failing = await berth.client.containers.create({ name: 'early-failed' });
    // Used: the service knows their sandboxes and begins the next exec before its lookup. Once
    // creates the engine's exec early; twice earns a standby (docs/exec.md), handed nothing here.
    for (const c of [expiring, failing, standby, standby]) await run({ command: 'true' }, c.id);
    await until(
      async () =>
        (await dockerExec(standby.id, ['ps', '-eo', 'args'])).stdout.includes(
          'berth-supervisor standby',
        ),
      'a standby in the container used twice',
      20_000,
    );
    await berth.age([expiring.id, standby.id], 2);
    await berth.pool.query(
      `update containers set status = 'failed', status_reason = 'test' where id = $1`,
      [failing.id],
    );

    for (const c of [expiring, standby]) {
      const refused = await post({ command: 'touch /mnt/data/ran' }, c.id);
      expect(refused.status).toBe(400);
      expect(await errorOf(refused)).toMatchObject({ code: 'container_expired' });
    }
    // A bad body as well: the container's refusal answers, as when it was looked up first.
    const bad = await post({ command: 'touch /mnt/data/ran', workdir: '/etc' }, failing.id);
    expect(bad.status).toBe(400);
    expect(await errorOf(bad)).toMatchObject({ code: 'container_failed' });
    for (const c of [expiring, standby, failing]) {
      const ls = await dockerExec(c.id, ['ls', '-A', '/mnt/data']);
      expect(ls.exitCode).toBe(0);
      expect(ls.stdout).toBe('');
    }
  });

  it("answers 404 for another project's container and 400 for an expired one", async ({
    berth,
    containerId,
    post,
  }) => {
    const other = await berth.newProjectClient();
    const res = await fetch(`${berth.url}/v1/containers/${containerId}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${other.apiKey}` },
      body: JSON.stringify({ command: 'true' }),
    });
    expect(res.status).toBe(404);

    const late = await berth.createExpired('late');
    const expired = await post({ command: 'true' }, late.id);
    expect(expired.status).toBe(400);
    expect(await errorOf(expired)).toMatchObject({
      message: 'Container is expired.',
      code: 'container_expired',
    });
  });
});
