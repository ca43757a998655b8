import { poolsFull } from './containers.js';
import { percentile, time, type BenchBerth, type Row } from './harness.js';
import { testDocker } from '@berth/testkit';

// The bare twin: dockerode itself, through the one client (no Berth helper in the way).
const docker = testDocker.docker;

/** Each sandbox runs as its own uid; looked up once, outside the timed calls. */
const users = new Map<string, string>();
async function userOf(name: string): Promise<string> {
  let user = users.get(name);
  if (!user) users.set(name, (user = (await docker.getContainer(name).inspect()).Config.User));
  return user;
}

async function bareExec(name: string, cmd: string[]): Promise<void> {
  const user = await userOf(name);
  const exec = await docker
    .getContainer(name)
    .exec({ Cmd: cmd, User: user, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise<void>((resolve, reject) => {
    docker.modem.demuxStream(stream, nullSink(), nullSink());
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  await exec.inspect();
}

function nullSink(): NodeJS.WritableStream {
  return { write: () => true } as unknown as NodeJS.WritableStream;
}

/**
 * After an exec the service starts the sandbox's next standby supervisor (docs/exec.md): ~40 ms
 * of the engine's and runc's time, which a bare exec started at once would be timed against
 * (80 ms instead of 45 here). The bare twin waits this long first, and so runs on a quiet host, as
 * the HTTP exec does.
 */
const STANDBY_SETTLE_MS = 200;

/** Exec round trips over HTTP beside a bare dockerode exec of the same command, same sandbox. */
export async function benchExec(berth: BenchBerth, runs = 60): Promise<Row[]> {
  const res = await berth.api('/v1/containers', {
    method: 'POST',
    body: JSON.stringify({ name: 'bench-exec' }),
  });
  const { id } = (await res.json()) as { id: string };
  const rows: Row[] = [];
  const sandbox = await berth.sandboxOf(id);
  await poolsFull(berth);
  try {
    for (const [label, argv] of [
      ['true', ['true']],
      ["python3 -c 'print(1)'", ['python3', '-c', 'print(1)']],
    ] as const) {
      const http: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i < runs; i++) {
        const [ms, r] = await time(() =>
          berth.api(`/v1/containers/${id}/exec`, {
            method: 'POST',
            body: JSON.stringify({ command: argv }),
          }),
        );
        if (r.status !== 200) throw new Error(`exec failed: ${await r.text()}`);
        await r.arrayBuffer();
        http.push(ms);
        await new Promise((r) => setTimeout(r, STANDBY_SETTLE_MS));
        bare.push((await time(() => bareExec(sandbox, [...argv])))[0]);
      }
      for (const p of [50, 95]) {
        const h = percentile(http, p);
        const b = percentile(bare, p);
        rows.push({ name: `exec p${p} ${label}: HTTP`, value: h, unit: 'ms' });
        rows.push({ name: `exec p${p} ${label}: bare dockerode`, value: b, unit: 'ms' });
        rows.push({ name: `exec p${p} ${label}: ratio`, value: h / b, unit: 'x' });
      }
    }

    // 100 MB of output against a 1 MiB cap: the service's memory must stay flat.
    const before = berth.service.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, berth.service.rss())), 20);
    const [ms, r] = await time(() =>
      berth.api(`/v1/containers/${id}/exec`, {
        method: 'POST',
        body: JSON.stringify({ command: 'head -c 100000000 /dev/zero | tr "\\0" a' }),
      }),
    );
    const body = (await r.json()) as { stdout_truncated: boolean };
    clearInterval(sampler);
    if (!body.stdout_truncated) throw new Error('100 MB output was not truncated');
    rows.push({ name: 'exec 100 MB stdout: duration', value: ms, unit: 'ms' });
    rows.push({
      name: 'exec 100 MB stdout: service RSS before',
      value: before / 2 ** 20,
      unit: 'MiB',
    });
    rows.push({ name: 'exec 100 MB stdout: service RSS peak', value: peak / 2 ** 20, unit: 'MiB' });
  } finally {
    await berth.api(`/v1/containers/${id}`, { method: 'DELETE' });
  }
  return rows;
}
