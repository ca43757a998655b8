import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { containerTest, errorOf, okJson, type RunningBerth } from './fixtures.js';

interface Session {
  id: string;
  object: string;
  container_id: string;
  status: string;
  status_reason: string | null;
}
interface Run {
  status: string;
  stdout: string;
  stderr: string;
  result: string | null;
  error: { name: string; value: string; traceback: string[] } | null;
  outputs: { type: string; data: string; path: string | null }[];
  timed_out: boolean;
  interrupt: string | null;
  interpreter_died: boolean;
  oom_killed: boolean;
  duration_ms: number;
}

const json = (method: string, body?: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

/** The sessions API of one Berth; each call names the file's container unless given another `id`. */
function sessionCalls(berth: RunningBerth, containerId: string) {
  const runRaw = (sessionId: string, body: unknown, id = containerId) =>
    berth.api(`/v1/containers/${id}/sessions/${sessionId}/run`, json('POST', body));
  return {
    createSession: async (id = containerId) =>
      okJson<Session>(await berth.api(`/v1/containers/${id}/sessions`, json('POST', {})), 'create'),
    runRaw,
    run: async (sessionId: string, code: string, timeoutMs = 30_000, id = containerId) =>
      okJson<Run>(await runRaw(sessionId, { code, timeout_ms: timeoutMs }, id), 'run'),
    removeSession: (sessionId: string, id = containerId) =>
      berth.api(`/v1/containers/${id}/sessions/${sessionId}`, { method: 'DELETE' }),
  };
}

const it = containerTest('sessions', {
  BERTH_SESSIONS_MAX_PER_CONTAINER: '3',
  BERTH_SESSION_INTERRUPT_GRACE_MS: '1000',
}).extend('calls', { scope: 'file' }, ({ berth, containerId }) => sessionCalls(berth, containerId));

/** Decodes a PNG far enough to prove it is one: signature, IHDR, and IDAT that inflates to size. */
function decodePng(png: Buffer): { width: number; height: number } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const bitDepth = png[24]!;
  const colorType = png[25]!;
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[colorType]!;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    if (type === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  // Each row: one filter byte, then the pixels.
  expect(raw.length).toBe(height * (1 + (width * channels * bitDepth) / 8));
  return { width, height };
}

describe('sessions', () => {
  it('keeps variables, imports and open files across runs; reports stdout, repr and tracebacks', async ({
    berth,
    containerId,
    calls,
  }) => {
    const s = await calls.createSession();
    expect(s).toMatchObject({
      object: 'container.session',
      container_id: containerId,
      status: 'ready',
    });
    expect(s.id).toMatch(/^sess_[0-9a-f]{32}$/);

    const first = await calls.run(
      s.id,
      'import json\nx = 1\nf = open("/mnt/data/log.txt", "w")\nprint("hello")',
    );
    expect(first).toMatchObject({ status: 'ok', stdout: 'hello\n', result: null, error: null });
    const second = await calls.run(
      s.id,
      'x += 1\nf.write("kept open\\n")\nf.flush()\njson.dumps({"x": x})',
    );
    expect(second).toMatchObject({ status: 'ok', result: `'{"x": 2}'` });
    const third = await calls.run(s.id, 'x * 10');
    expect(third).toMatchObject({ status: 'ok', result: '20' });
    expect((await dockerExec(containerId, ['cat', '/mnt/data/log.txt'])).stdout).toBe(
      'kept open\n',
    );

    const failed = await calls.run(
      s.id,
      'import sys\nprint("to stderr", file=sys.stderr)\ndef f():\n    return 1 / 0\nf()',
    );
    expect(failed.status).toBe('error');
    expect(failed.stderr).toBe('to stderr\n');
    expect(failed.error).toMatchObject({ name: 'ZeroDivisionError', value: 'division by zero' });
    expect(failed.error!.traceback.join('')).toMatch(/line 4, in f\n\s+return 1 \/ 0/);
    expect((await calls.run(s.id, 'x')).result).toBe('2');

    const listed = (await (await berth.api(`/v1/containers/${containerId}/sessions`)).json()) as {
      data: Session[];
    };
    expect(listed.data.map((d: Session) => d.id)).toContain(s.id);
    expect((await calls.removeSession(s.id)).status).toBe(200);
    expect((await calls.runRaw(s.id, { code: '1' })).status).toBe(404);
    // The interpreter is gone from the sandbox too.
    const ps = await dockerExec(containerId, ['pgrep', '-f', `berth-session:${s.id}`]);
    expect(ps).toMatchObject({ exitCode: 1, stdout: '' });
  }, 120_000);

  it('returns a figure the code shows as a valid PNG, also saved under /mnt/data', async ({
    containerId,
    calls,
  }) => {
    const s = await calls.createSession();
    // The first matplotlib import in a sandbox builds its font cache: allow for it.
    const r = await calls.run(
      s.id,
      'import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 3, 2])\nplt.show()\n"shown"',
      120_000,
    );
    expect(r.status).toBe('ok');
    expect(r.result).toBe("'shown'");
    expect(r.outputs).toHaveLength(1);
    const png = Buffer.from(r.outputs[0]!.data, 'base64');
    expect(decodePng(png)).toEqual({ width: 400, height: 300 });
    expect(r.outputs[0]!.path).toMatch(new RegExp(`^/mnt/data/figures/${s.id}-\\d+\\.png$`));
    const inside = await dockerExec(containerId, ['sha256sum', r.outputs[0]!.path!]);
    expect(inside.stdout.split(' ')[0]).toBe(createHash('sha256').update(png).digest('hex'));
    // A figure left open at the end of a run is shown too, as Jupyter's inline backend does.
    const open = await calls.run(s.id, 'plt.figure(figsize=(2, 2), dpi=50)\nplt.plot([1])\nNone');
    expect(open.outputs).toHaveLength(1);
    expect(decodePng(Buffer.from(open.outputs[0]!.data, 'base64'))).toEqual({
      width: 100,
      height: 100,
    });
    await calls.removeSession(s.id);
  }, 180_000);

  it('interrupts an infinite loop at its timeout and keeps the session; kills one that ignores it', async ({
    calls,
  }) => {
    const s = await calls.createSession();
    await calls.run(s.id, 'y = 5');
    const started = Date.now();
    const looped = await calls.run(s.id, 'while True:\n    pass', 1_500);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(looped).toMatchObject({
      status: 'interrupted',
      timed_out: true,
      interrupt: 'keyboard_interrupt',
    });
    expect(looped.error?.name).toBe('KeyboardInterrupt');
    expect((await calls.run(s.id, 'y + 1')).result).toBe('6');

    const stubborn = await calls.run(
      s.id,
      'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass',
      1_500,
    );
    expect(stubborn).toMatchObject({
      status: 'restarted',
      timed_out: true,
      interrupt: 'restarted',
    });
    // A fresh interpreter answers the next run; its state is gone, as the answer said.
    expect((await calls.run(s.id, '"y" in globals()')).result).toBe('False');
    await calls.removeSession(s.id);
  }, 60_000);

  it('reports an OOM in a session; the container stays usable and the session restarts', async ({
    berth,
    calls,
  }) => {
    const c = await berth.client.containers.create({ name: 'session-oom' });
    const s = await calls.createSession(c.id);
    await calls.run(s.id, 'z = 1', 30_000, c.id);
    const r = await calls.run(
      s.id,
      'x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))',
      60_000,
      c.id,
    );
    expect(r).toMatchObject({ status: 'died', interpreter_died: true, oom_killed: true });
    const after = await (await berth.api(`/v1/containers/${c.id}/sessions/${s.id}`)).json();
    expect(after).toMatchObject({ status: 'dead' });
    const refused = await calls.runRaw(s.id, { code: '1' }, c.id);
    expect(refused.status).toBe(400);
    expect((await errorOf(refused)).code).toBe('session_dead');

    expect((await berth.client.containers.retrieve(c.id)).status).toBe('running');
    const exec = await berth.api(
      `/v1/containers/${c.id}/exec`,
      json('POST', { command: 'echo alive' }),
    );
    expect(((await exec.json()) as { stdout: string }).stdout).toBe('alive\n');

    const restarted = await berth.api(
      `/v1/containers/${c.id}/sessions/${s.id}/restart`,
      json('POST'),
    );
    expect(await restarted.json()).toMatchObject({ status: 'ready' });
    expect((await calls.run(s.id, '1 + 1', 30_000, c.id)).result).toBe('2');
    // os._exit is a death too, not an OOM.
    const exited = await calls.run(s.id, 'import os\nos._exit(3)', 30_000, c.id);
    expect(exited).toMatchObject({ status: 'died', oom_killed: false });
    await berth.client.containers.delete(c.id);
  }, 120_000);

  it('keeps two sessions of one container isolated', async ({ calls }) => {
    const a = await calls.createSession();
    const b = await calls.createSession();
    await calls.run(a.id, 'secret = 42');
    expect((await calls.run(b.id, '"secret" in globals()')).result).toBe('False');
    await calls.run(b.id, 'secret = "b"');
    expect((await calls.run(a.id, 'secret')).result).toBe('42');
    expect((await calls.run(b.id, 'secret')).result).toBe("'b'");
    await calls.removeSession(a.id);
    await calls.removeSession(b.id);
  }, 120_000);

  it('survives the kill sweep of an exec that timed out in the same container', async ({
    berth,
    containerId,
    calls,
  }) => {
    const s = await calls.createSession();
    await calls.run(
      s.id,
      'import subprocess\nkept = 7\nchild = subprocess.Popen(["sleep", "600"])',
    );
    const res = await berth.api(
      `/v1/containers/${containerId}/exec`,
      json('POST', { command: 'sleep 30 & sleep 30', timeout_ms: 500 }),
    );
    expect(await res.json()).toMatchObject({ timed_out: true });
    expect((await calls.run(s.id, 'kept, child.poll()')).result).toBe('(7, None)');
    await calls.removeSession(s.id);
  });

  it('holds at most the configured number of sessions per container', async ({
    berth,
    containerId,
    calls,
  }) => {
    const made = [
      await calls.createSession(),
      await calls.createSession(),
      await calls.createSession(),
    ];
    const over = await berth.api(`/v1/containers/${containerId}/sessions`, json('POST', {}));
    expect(over.status).toBe(429);
    for (const s of made) await calls.removeSession(s.id);
    const again = await calls.createSession();
    await calls.removeSession(again.id);
  }, 120_000);

  it('streams output as server-sent events, then the result', async ({ calls }) => {
    const s = await calls.createSession();
    const res = await calls.runRaw(s.id, {
      code: 'import time\nprint("a", flush=True)\ntime.sleep(0.3)\nprint("b")\n7 * 6',
      stream: true,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const events = text
      .trim()
      .split('\n\n')
      .map((block) => {
        const [event, data] = block.split('\n');
        return { event: event!.slice(7), data: JSON.parse(data!.slice(6)) };
      });
    expect(events.filter((e) => e.event === 'stdout').map((e) => e.data.text)).toEqual([
      'a\n',
      'b\n',
    ]);
    expect(events.at(-1)).toMatchObject({ event: 'result', data: { status: 'ok', result: '42' } });
    await calls.removeSession(s.id);
  });

  it('runs one piece of code at a time (409), and a client that goes away interrupts its code', async ({
    berth,
    containerId,
    calls,
  }) => {
    const s = await calls.createSession();
    await calls.run(s.id, 'kept = "yes"');
    const abort = new AbortController();
    const first = await berth.api(`/v1/containers/${containerId}/sessions/${s.id}/run`, {
      ...json('POST', {
        code: 'print("started", flush=True)\nwhile True:\n    pass',
        stream: true,
        timeout_ms: 120_000,
      }),
      signal: abort.signal,
    });
    const reader = first.body!.getReader();
    // The first event means the code runs, and holds the session.
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('started');
    const busy = await calls.runRaw(s.id, { code: '1' });
    expect(busy.status).toBe(409);
    expect((await errorOf(busy)).code).toBe('session_busy');

    abort.abort();
    const gone = Date.now();
    // Until the run's in-sandbox client is gone the session is still busy; then it answers.
    let next: Response;
    do next = await calls.runRaw(s.id, { code: 'kept' });
    while (next.status === 409 && Date.now() - gone < 20_000);
    expect(await next.json()).toMatchObject({ status: 'ok', result: "'yes'" });
    expect(Date.now() - gone).toBeLessThan(20_000);
    await calls.removeSession(s.id);
  }, 120_000);

  it('counts a run as activity, and refuses bad input with 4xx', async ({
    berth,
    containerId,
    calls,
  }) => {
    const s = await calls.createSession();
    await berth.age([containerId], 5);
    const before = await berth.client.containers.retrieve(containerId);
    await calls.run(s.id, 'pass');
    const after = await berth.client.containers.retrieve(containerId);
    expect(before.last_active_at).toBeDefined();
    expect(after.last_active_at).toBeGreaterThanOrEqual(before.last_active_at! + 299);

    for (const [body, param] of [
      [{}, 'code'],
      [{ code: 1 }, 'code'],
      [{ code: 'x', timeout_ms: 0 }, 'timeout_ms'],
      [{ code: 'x', extra: true }, 'extra'],
    ] as const) {
      const res = await calls.runRaw(s.id, body);
      expect(res.status).toBe(400);
      expect((await errorOf(res)).param).toBe(param);
    }
    expect((await calls.runRaw('sess_' + '0'.repeat(32), { code: '1' })).status).toBe(404);
    expect((await calls.runRaw('nope', { code: '1' })).status).toBe(404);
    expect(
      (await berth.api(`/v1/containers/${containerId}/sessions`, json('POST', { x: 1 }))).status,
    ).toBe(400);
    await calls.removeSession(s.id);
  });
});
