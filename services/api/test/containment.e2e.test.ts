import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { describe, expect } from 'vitest';
import { dockerExec, inspectSandbox, sandboxImage, testDocker } from '@berth/testkit';
import { loadConfig } from '../src/config.js';
import { berthTest, startBerth, type RunningBerth } from './fixtures.js';

/**
 * A hostile tenant, driving real sandboxes through the HTTP API as attacking code would. Each
 * test is one row of docs/security.md; the API must stay healthy throughout.
 */
interface ExecJson {
  exit_code: number | null;
  stdout: string;
  stderr: string;
  timed_out: boolean;
}

/** Exec (raw and must-answer), create, a health check and hostile code, against one Berth. */
function containmentCalls(berth: RunningBerth) {
  const exec = (id: string, body: Record<string, unknown>, init: RequestInit = {}) =>
    berth.postJson(`/v1/containers/${id}/exec`, body, init);
  return {
    exec,
    async run(id: string, body: Record<string, unknown>): Promise<ExecJson> {
      const res = await exec(id, body);
      const json = (await res.json()) as ExecJson;
      expect(res.status, JSON.stringify(json)).toBe(200);
      return json;
    },
    create: async (name = 'hostile') => (await berth.client.containers.create({ name })).id,
    async healthy(): Promise<void> {
      expect((await fetch(`${berth.url}/healthz`)).status).toBe(200);
    },
    /** Starts hostile code as a streaming exec; `ready` once it printed its first line. */
    attacker(id: string, body: Record<string, unknown>) {
      const res = exec(id, { ...body, stream: true });
      const reader = res.then((r) => r.body!.getReader());
      const ready = reader.then((r) => r.read());
      const done = ready.then(async () => {
        const r = await reader;
        while (!(await r.read()).done);
      });
      return { ready, done };
    },
  };
}

const it = berthTest({
  BERTH_EXEC_GRACE_MS: '1500',
  BERTH_FILES_HELPER_TIMEOUT_MS: '3000',
  BERTH_TRANSFER_IDLE_TIMEOUT_MS: '3000',
  BERTH_EXEC_MAX_CONCURRENT: '4',
  // The exec bodies held at once (default 256 MiB): the flood test's bound rests on it.
  BERTH_EXEC_MAX_INFLIGHT_BODY_MB: '32',
})
  .extend('calls', { scope: 'file' }, ({ berth }) => containmentCalls(berth))
  // The sandbox the deadline tests share, made when the first of them asks.
  .extend('deadlineId', { scope: 'file' }, ({ calls }) => calls.create('deadline'));

/** Processes in the sandbox, as the operator sees them (`docker exec ps` as root). */
const processes = async (id: string) => (await dockerExec(id, ['ps', '-eo', 'args'], '0')).stdout;

describe('host disk', () => {
  it('discards what a sandbox writes to its init process: no log file grows on the host', async ({
    calls,
  }) => {
    const id = await calls.create();
    const started = Date.now();
    const r = await calls.run(id, {
      command:
        'head -c 50000000 /dev/zero > /proc/1/fd/1 && head -c 50000000 /dev/zero > /proc/1/fd/2; echo wrote',
      timeout_ms: 60_000,
    });
    const floodMs = Date.now() - started;
    expect(r.stdout).toBe('wrote\n');
    const info = await inspectSandbox(id);
    expect(info!.HostConfig.LogConfig).toMatchObject({ Type: 'none' });
    // No log file exists for the sandbox at all: nothing on the host grew by those 100 MB.
    expect(info!.LogPath).toBe('');
    console.log(
      `containment: a 100 MB flood of PID 1's stdout/stderr took ${floodMs} ms and was discarded`,
    );
    await calls.healthy();
  });
});

describe('every exec answers by its deadline', () => {
  const escapes: [string, string][] = [
    ['a process that cleared its environment', 'exec env -i sleep 40'],
    ['a setsid double fork', "setsid sh -c 'env -i sleep 41 & ' ; sleep 30"],
    ['code that stops its own supervisor', 'kill -STOP $PPID; env -i sleep 42'],
    [
      'code that kills its own supervisor and detaches',
      "setsid sh -c 'env -i sleep 43 &'; kill -KILL $PPID; sleep 30",
    ],
  ];
  for (const [what, command] of escapes) {
    it(`times out ${what}, answers within the grace, and leaves no process`, async ({
      calls,
      deadlineId: id,
    }) => {
      const started = Date.now();
      const r = await calls.run(id, { command, timeout_ms: 2000 });
      const late = Date.now() - started - 2000;
      expect(r.timed_out).toBe(true);
      // The bound: timeout_ms plus the grace (1.5 s here) plus the round trip.
      expect(late).toBeLessThan(1500 + 1000);
      console.log(`containment: '${what}' answered ${late} ms past timeout_ms`);
      const deadline = Date.now() + 5000;
      let ps = await processes(id);
      while (/sleep 4\d|sleep 30/.test(ps) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        ps = await processes(id);
      }
      expect(ps).not.toMatch(/sleep 4\d|sleep 30/);
      // The sandbox is still usable, and the slot was given back.
      expect((await calls.run(id, { command: 'echo alive' })).stdout).toBe('alive\n');
    });
  }

  it('times out in streaming mode too, with the result event by the deadline', async ({
    calls,
    deadlineId: id,
  }) => {
    const started = Date.now();
    const res = await calls.exec(id, {
      command: "setsid sh -c 'env -i sleep 44 &'; kill -STOP $PPID; sleep 30",
      timeout_ms: 2000,
      stream: true,
    });
    const text = await res.text();
    expect(Date.now() - started).toBeLessThan(2000 + 2500);
    expect(text).toMatch(/event: result\ndata: .*"timed_out":true/);
    expect(await processes(id)).not.toMatch(/sleep 44/);
  });

  it('kills a detached tree when the client goes away', async ({ calls, deadlineId: id }) => {
    const controller = new AbortController();
    const res = await calls.exec(
      id,
      { command: "setsid sh -c 'env -i sleep 45 &'; echo started; sleep 30", stream: true },
      { signal: controller.signal },
    );
    await res.body!.getReader().read();
    controller.abort();
    const deadline = Date.now() + 5000;
    let ps = await processes(id);
    while (/sleep 45|sleep 30/.test(ps) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      ps = await processes(id);
    }
    expect(ps).not.toMatch(/sleep 45|sleep 30/);
  });
});

/** Hostile code: signals every process of Berth's files helper it can see, for N seconds. */
const STOPPER = `import os, signal, sys, time
sig = getattr(signal, 'SIG' + sys.argv[1]); end = time.time() + float(sys.argv[2]); me = os.getpid()
print('ready', flush=True)
while time.time() < end:
    for p in os.listdir('/proc'):
        if not p.isdigit() or int(p) == me: continue
        try:
            if b'berth:files-' in open('/proc/%s/cmdline' % p, 'rb').read(): os.kill(int(p), sig)
        except OSError: pass`;

/**
 * Hostile code: kills (SIGKILL) the first files helper it sees holding a file under /mnt/data open,
 * and writes that file's name to /tmp/killed.
 */
const MID_KILLER = `import os, signal, time
me = os.getpid(); end = time.time() + 10
print('ready', flush=True)
while time.time() < end:
    for p in os.listdir('/proc'):
        if not p.isdigit() or int(p) == me: continue
        try:
            if b'berth:files-' not in open('/proc/%s/cmdline' % p, 'rb').read(): continue
            held = [os.readlink('/proc/%s/fd/%s' % (p, f)) for f in os.listdir('/proc/%s/fd' % p)]
        except OSError: continue
        opened = [h for h in held if h.startswith('/mnt/data/')]
        if opened:
            os.kill(int(p), signal.SIGKILL)
            open('/tmp/killed', 'w').write(opened[0])
            raise SystemExit`;

describe('files helper', () => {
  it('answers 504 when code stops the helper, and the helper is not left behind', async ({
    berth,
    calls,
  }) => {
    const id = await calls.create('stopper');
    // Enough files that a listing takes a while: the attacker has time to catch its helper.
    await calls.run(id, {
      command: 'mkdir /mnt/data/many && cd /mnt/data/many && seq 1 3000 | xargs touch',
    });
    // The attacker: stop every files helper as soon as it appears, for 10 s.
    const attack = calls.attacker(id, {
      command: ['python3', '-c', STOPPER, 'STOP', '8'],
      timeout_ms: 15_000,
    });
    await attack.ready;
    const started = Date.now();
    const res = await berth.api(`/v1/containers/${id}/files`);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(res.status).toBe(504);
    expect(body.error.type).toBe('server_error');
    expect(body.error.message).toMatch(/stalled/);
    expect(Date.now() - started).toBeLessThan(3000 + 2000);
    await attack.done;
    // The kill sweep runs as the sandbox's uid, so the attacker could stop it too; it is retried,
    // and once the attack ends nothing of Berth's is left stopped in the sandbox.
    const deadline = Date.now() + 20_000;
    let ps = await processes(id);
    while (/berth:files-/.test(ps) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      ps = await processes(id);
    }
    expect(ps).not.toMatch(/berth:files-/);
    // Once the attack ends, files work again.
    expect((await berth.api(`/v1/containers/${id}/files`)).status).toBe(200);
    await calls.healthy();
  });

  it('answers a clear 400 when code kills the helper mid-upload, and keeps nothing', async ({
    berth,
    calls,
  }) => {
    const id = await calls.create('killer');
    // Killed while it holds the upload's file open: the moment a named temporary file was left.
    const attack = calls.attacker(id, {
      command: ['python3', '-c', MID_KILLER],
      timeout_ms: 15_000,
    });
    await attack.ready;
    // A slow upload (2 s of 64 KiB chunks), so the helper is alive while the attack runs.
    const boundary = 'berthboundary';
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 0)
          controller.enqueue(
            Buffer.from(
              `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="victim.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
            ),
          );
        if (sent >= 40) {
          controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
          controller.close();
          return;
        }
        sent += 1;
        await new Promise((r) => setTimeout(r, 50));
        controller.enqueue(Buffer.alloc(64 * 1024, 7));
      },
    });
    const res = await berth.api(`/v1/containers/${id}/files`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
    } as RequestInit);
    const answer = (await res.json()) as { error: { code: string } };
    expect(res.status).toBe(400);
    expect(answer.error.code).toBe('sandbox_interference');
    await attack.done;
    // The attacker killed it holding a file under /mnt/data, not before it opened one.
    expect((await calls.run(id, { command: 'cat /tmp/killed' })).stdout).toMatch(/^\/mnt\/data\//);
    expect((await calls.run(id, { command: 'ls -A /mnt/data' })).stdout).toBe('');
  });
});

describe('no per-uid kernel resource is shared between sandboxes', () => {
  it('gives each sandbox its own uid: one tenant exhausting inotify does not starve another', async ({
    berth,
    calls,
  }) => {
    const a = await calls.create('inotify-hog');
    const other = await berth.newProjectClient();
    const b = (await other.client.containers.create({ name: 'victim' })).id;
    const uidA = (await calls.run(a, { command: 'id -u' })).stdout.trim();
    // A holds every inotify instance its uid may have, and keeps them while B asks for one.
    const hog = calls.run(a, {
      command: [
        'python3',
        '-c',
        'import ctypes,time; l=ctypes.CDLL(None,use_errno=True)\nfds=[l.inotify_init() for _ in range(200)]\nprint(sum(1 for f in fds if f>=0), flush=True); time.sleep(4)',
      ],
      timeout_ms: 10_000,
    });
    await new Promise((r) => setTimeout(r, 1500));
    const victim = await berth.api(`/v1/containers/${b}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${other.apiKey}` },
      body: JSON.stringify({
        command: [
          'python3',
          '-c',
          'import ctypes,os; l=ctypes.CDLL(None,use_errno=True); print(os.getuid(), l.inotify_init())',
        ],
      }),
    });
    const out = ((await victim.json()) as ExecJson).stdout.trim().split(' ');
    const held = Number((await hog).stdout.trim());
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(200); // A did reach its own limit
    expect(out[0]).not.toBe(uidA);
    expect(Number(out[1])).toBeGreaterThanOrEqual(0); // B still got one
  });

  it('keeps /mnt/data readable and writable by code and by uploads under the sandbox uid', async ({
    berth,
    calls,
  }) => {
    const id = await calls.create('own-uid');
    await calls.run(id, { command: 'echo from-code > /mnt/data/a.txt' });
    const form = new FormData();
    form.append('file', new Blob(['from-upload']), 'b.txt');
    expect(
      (await berth.api(`/v1/containers/${id}/files`, { method: 'POST', body: form })).status,
    ).toBe(200);
    const r = await calls.run(id, {
      command: 'cat /mnt/data/b.txt; echo; stat -c %u /mnt/data/a.txt /mnt/data/b.txt; id -u',
    });
    const [text, uidA, uidB, me] = r.stdout.trim().split('\n');
    expect(text).toBe('from-upload');
    expect(uidA).toBe(me);
    expect(uidB).toBe(me);
  });
});

describe('sizes', () => {
  it('fits the file systems inside a 1g limit: a full /mnt/data is a 413, not an OOM kill', async ({
    berth,
    calls,
  }) => {
    const id = await calls.create('fill');
    const df = await calls.run(id, {
      command: 'df -B1 --output=size /mnt/data /tmp /dev/shm | tail -n 3',
    });
    const sizes = df.stdout.trim().split('\n').map(Number);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(1024 ** 3 * 0.75);
    const fill = await calls.run(id, {
      command: 'head -c 600000000 /dev/zero > /mnt/data/fill; echo $?',
      timeout_ms: 60_000,
    });
    expect(fill.stderr).toMatch(/No space left/);
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(8 * 1024 * 1024)]), 'more.bin');
    const res = await berth.api(`/v1/containers/${id}/files`, { method: 'POST', body: form });
    expect(res.status).toBe(413);
    const c = await berth.client.containers.retrieve(id);
    expect(c.status).toBe('running');
    expect((await calls.run(id, { command: 'echo still-here' })).stdout).toBe('still-here\n');
  });

  it('caps the number of files in /mnt/data', async ({ calls }) => {
    const id = await calls.create('inodes');
    const r = await calls.run(id, {
      command: [
        'python3',
        '-c',
        'import os\nn=0\ntry:\n  while n < 100000:\n    open(f"/mnt/data/f{n}", "w").close(); n+=1\nexcept OSError as e:\n  print(n, e.errno)',
      ],
      timeout_ms: 60_000,
    });
    const [made, errno] = r.stdout.trim().split(' ').map(Number);
    expect(errno).toBe(28); // ENOSPC
    expect(made).toBeLessThanOrEqual(65_536);
  });
});

describe('start-up trust', () => {
  it('resolves workdir inside the sandbox and refuses a symlink', async ({ calls }) => {
    const id = await calls.create('workdir');
    await calls.run(id, { command: 'ln -s /etc /mnt/data/etc-link && mkdir -p /mnt/data/real' });
    const r = await calls.run(id, { command: 'pwd', workdir: '/mnt/data/etc-link' });
    expect(r.exit_code).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/symlinks are not followed/);
    expect((await calls.run(id, { command: 'pwd', workdir: '/mnt/data/real' })).stdout).toBe(
      '/mnt/data/real\n',
    );
  });

  it('refuses to start on an engine without seccomp', async ({ dockerProxy: docker }) => {
    docker.respond(
      (r) => r.method === 'GET' && /\/info$/.test(r.path),
      async (upstream) => ({
        status: 200,
        body: { ...JSON.parse((await upstream()).toString()), SecurityOptions: [] },
      }),
    );
    await expect(startBerth({ BERTH_DOCKER_SOCKET: docker.socketPath })).rejects.toThrow(
      /without seccomp/,
    );
  });

  it('refuses to start on a runtime that lets a container start in a leaked host directory', async ({
    dockerProxy: docker,
  }) => {
    // What a runc vulnerable to CVE-2024-21626 does: the probe containers, whose working
    // directory is /proc/self/fd/N, start. Here the engine is made to say so.
    const probe = (r: { path: string }) =>
      r.path.includes('berth-probe-') || r.path.includes('/fakeprobe');
    docker.respond(
      (r) => r.method === 'POST' && r.path.includes('/containers/create') && probe(r),
      async () => ({
        status: 201,
        body: { Id: `fakeprobe${Math.random().toString(16).slice(2)}` },
      }),
    );
    docker.respond(
      (r) => r.path.includes('/containers/fakeprobe'),
      async () => ({ status: 204, body: null }),
    );
    await expect(startBerth({ BERTH_DOCKER_SOCKET: docker.socketPath })).rejects.toThrow(
      /CVE-2024-21626/,
    );
  });

  it('removes at start the probes an earlier process of its instance left, and no one else’s', async ({
    berthWith,
  }) => {
    const instance = `t${randomBytes(5).toString('hex')}`;
    const leftover = (owner: string) =>
      testDocker.docker.createContainer({
        name: `berth-probe-${owner}-${randomBytes(4).toString('hex')}`,
        Image: sandboxImage(),
        Cmd: ['/bin/true'],
        Labels: { 'org.berth.managed-by': 'berth-probe', 'org.berth.instance': owner },
        HostConfig: { NetworkMode: 'none' },
      });
    const mine = await leftover(instance);
    const theirs = await leftover(`${instance}x`);
    try {
      await berthWith({ BERTH_INSTANCE: instance });
      await expect(mine.inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect((await theirs.inspect()).State.Status).toBe('created');
    } finally {
      await mine.remove({ force: true }).catch(() => {});
      await theirs.remove({ force: true });
    }
  });

  it('says nothing of its dependencies’ errors on the public /readyz', async ({ berth }) => {
    const res = await fetch(`${berth.url}/readyz`);
    const body = JSON.stringify(await res.json());
    expect(body).not.toMatch(/error|ECONN|sock|\/var\//);
  });

  it('refuses the test-only egress switches without an explicit test mode', () => {
    expect(() => loadConfig({ BERTH_EGRESS_TEST_HOSTS: 'a.example=127.0.0.1' })).toThrow(
      /BERTH_TEST_MODE/,
    );
    expect(() =>
      loadConfig({
        BERTH_EGRESS_TEST_HOSTS: 'a.example=127.0.0.1',
        BERTH_TEST_MODE: '1',
        NODE_ENV: 'production',
        DATABASE_URL: 'postgres://x@localhost/x',
      }),
    ).toThrow(/refused in production/);
    expect(
      loadConfig({ BERTH_EGRESS_TEST_HOSTS: 'a.example=127.0.0.1', BERTH_TEST_MODE: '1' })
        .BERTH_EGRESS_TEST_HOSTS,
    ).toBe('a.example=127.0.0.1');
  });
});

describe('API memory', () => {
  it('caps file transfers in flight with 429 and Retry-After', async ({ berthWith }) => {
    const small = await berthWith({ BERTH_MAX_INFLIGHT_TRANSFERS: '1' });
    // One upload that takes its time holds the only slot.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const boundary = 'slowboundary';
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (step++ === 0) {
          controller.enqueue(
            Buffer.from(
              `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\n\r\n`,
            ),
          );
          return;
        }
        await held;
        controller.enqueue(Buffer.from(`data\r\n--${boundary}--\r\n`));
        controller.close();
      },
    });
    const slow = small.api('/v1/files', {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
    } as RequestInit);
    await new Promise((r) => setTimeout(r, 300));
    const refused = await small.api('/v1/files?limit=1');
    expect(refused.status).toBe(200); // listing is not a transfer
    const form = new FormData();
    form.append('file', new Blob(['x']), 'x.txt');
    form.append('purpose', 'user_data');
    const second = await small.api('/v1/files', { method: 'POST', body: form });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
    release();
    expect((await slow).status).toBe(400); // no purpose: refused, but it ran
    const third = await small.api('/v1/files', { method: 'POST', body: form });
    expect(third.status).toBe(200);
  });

  it('stays bounded under 300 concurrent hostile exec requests with large bodies', async ({
    berth,
    calls,
  }) => {
    const ids = [await calls.create('flood-a'), await calls.create('flood-b')];
    // One shared body: the client side adds almost nothing, so RSS growth is the server's.
    // Each exec holds its slot for a second: how many are let in while the flood arrives is the
    // caps' doing, not how fast a sandbox runs `cat` (the faster, the more ran, each leaving its
    // 2 MiB body and its copies to the collector: 63 ran and the peak was +222 MiB).
    const body = () =>
      Buffer.from(
        JSON.stringify({
          command: 'cat > /dev/null; sleep 1',
          stdin: 'x'.repeat(2 * 1024 * 1024),
          timeout_ms: 5000,
        }),
      );
    const bodies = ids.map(() => body());
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const url = new URL(berth.url);
    const post = (i: number) =>
      new Promise<number>((resolve) => {
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            method: 'POST',
            path: `/v1/containers/${ids[i % 2]}/exec`,
            agent: false,
            headers: {
              authorization: `Bearer ${berth.apiKey}`,
              'content-type': 'application/json',
              'content-length': bodies[i % 2]!.length,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', () => resolve(0));
          },
        );
        req.on('error', () => resolve(0));
        req.end(bodies[i % 2]);
      });
    const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => post(i)));
    clearInterval(sampler);
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    expect(ok).toBeGreaterThan(0);
    expect(limited).toBeGreaterThan(0);
    expect(ok + limited).toBe(300);
    const growthMb = (peak - before) / 1024 / 1024;
    console.log(
      `containment: 300 hostile 2 MiB execs: ${ok} ran, ${limited} got 429; RSS ${Math.round(before / 1048576)} MiB before, peak +${growthMb.toFixed(0)} MiB`,
    );
    expect(growthMb).toBeLessThan(200);
    await calls.healthy();
  });
});
