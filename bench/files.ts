import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { percentile, time, type BenchBerth, type Row, type ServiceProcess } from './harness.js';
import { testDocker } from '@berth/testkit';
import { poolsFull } from './containers.js';
import type { ClientReply, ClientRequest } from './files-client.js';

// The bare twin: dockerode itself, through the one client (no Berth helper in the way).
const docker = testDocker.docker;
const SIZE = 200 * 1024 * 1024;
const CHUNK = randomBytes(1024 * 1024);
/** Rounds of each transfer, API and bare alternating: the load of this shared machine drifts. */
const ROUNDS = 5;
const median = (xs: number[]) => percentile(xs, 50);

async function* bytes(size: number) {
  for (let sent = 0; sent < size; sent += CHUNK.length)
    yield CHUNK.subarray(0, Math.min(CHUNK.length, size - sent));
}

interface Measured {
  ms: number;
  /** The service's RSS growth over its RSS just before the transfer: the peak, every 50 ms (API). */
  rssGrowth: number;
  /** CPU time (user + system) spent: the service's (API), or this process's, the client (bare). */
  cpuMs: number;
  /** The HTTP client's CPU time, in its own process (API only): on the same cores as the rest. */
  clientCpuMs?: number;
}

/** The process a transfer's CPU is counted in: the bench's own (the bare twins' client). */
const bench = {
  cpuMs(): number {
    const used = process.cpuUsage();
    return (used.user + used.system) / 1000;
  },
};

/**
 * One timed transfer, with the CPU time `of` spent: the service's for the API (it runs in a
 * process of its own, as does the HTTP client, bench/files-client.ts), with its RSS growth; this
 * process's for the bare twin.
 */
async function measure(
  of: Pick<ServiceProcess, 'cpuMs'> & Partial<Pick<ServiceProcess, 'rss'>>,
  fn: () => Promise<void>,
): Promise<Measured> {
  const rss = of.rss ?? (() => 0);
  const before = rss();
  let peak = before;
  const timer = of.rss ? setInterval(() => (peak = Math.max(peak, rss())), 50) : undefined;
  const cpu = of.cpuMs();
  try {
    const [ms] = await time(fn);
    peak = Math.max(peak, rss());
    return { ms, rssGrowth: peak - before, cpuMs: of.cpuMs() - cpu };
  } finally {
    clearInterval(timer);
  }
}

/** The sandbox's own user (each sandbox has a uid of its own): what its code runs as. */
const userOf = async (name: string): Promise<string> =>
  (await docker.getContainer(name).inspect()).Config.User;

/**
 * The same bytes through a bare `docker exec … cat` (docker cp can't write into a tmpfs mount),
 * written in the same 1 MiB chunks the HTTP client sends.
 */
async function bareUpload(name: string, user: string): Promise<void> {
  const exec = await docker.getContainer(name).exec({
    Cmd: ['sh', '-c', 'cat > /mnt/data/bare.bin'],
    User: user,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  let failed: Error | null = null;
  stream.on('error', (error: Error) => (failed = error));
  stream.resume();
  for await (const chunk of bytes(SIZE)) {
    if (failed) throw new Error(`bare upload failed: ${(failed as Error).message}`);
    if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await new Promise((r) => stream.once('end', r));
  const { ExitCode } = await exec.inspect();
  if (ExitCode !== 0) throw new Error(`bare upload exited ${ExitCode}`);
}

/**
 * The file back through a bare `docker exec cat`: the attach stream read as it comes, its frame
 * headers walked in place to count the payload (no copy: the floor of any demultiplexer).
 */
async function bareDownload(name: string, user: string): Promise<void> {
  const exec = await docker.getContainer(name).exec({
    Cmd: ['cat', '/mnt/data/bare.bin'],
    User: user,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  let payload = 0;
  // Bytes of the current frame (header, then payload) still to come in later chunks.
  let header = Buffer.alloc(0);
  let left = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < chunk.length) {
      if (left > 0) {
        const n = Math.min(left, chunk.length - at);
        payload += n;
        left -= n;
        at += n;
        continue;
      }
      if (header.length === 0 && chunk.length - at >= 8) {
        left = chunk.readUInt32BE(at + 4);
        at += 8;
        continue;
      }
      const need = 8 - header.length;
      header = Buffer.concat([header, chunk.subarray(at, at + need)]);
      at += Math.min(need, chunk.length - at);
      if (header.length === 8) {
        left = header.readUInt32BE(4);
        header = Buffer.alloc(0);
      }
    }
  }
  if (payload !== SIZE) throw new Error(`bare download read ${payload} bytes`);
}

async function bareRemove(name: string, user: string): Promise<void> {
  const exec = await docker
    .getContainer(name)
    .exec({ Cmd: ['rm', '-f', '/mnt/data/bare.bin'], User: user });
  await exec.start({ Detach: true });
  for (let i = 0; i < 100 && (await exec.inspect()).Running; i++)
    await new Promise((r) => setTimeout(r, 20));
}

type Reply = Exclude<ClientReply, { error: string }>;

/** The HTTP client, forked once (untimed) and asked for one transfer at a time. */
function startClient() {
  const child = fork(fileURLToPath(new URL('./files-client.ts', import.meta.url)), {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (req: ClientRequest) =>
    new Promise<Reply>((resolve, reject) => {
      const onExit = () => reject(new Error('the bench client exited'));
      child.once('exit', onExit);
      child.once('message', (reply: ClientReply) => {
        child.off('exit', onExit);
        if ('error' in reply) reject(new Error(reply.error));
        else resolve(reply);
      });
      child.send(req);
    });
  return { ask, close: () => child.disconnect() };
}

/** A transfer the client timed, with the service's RSS growth and CPU time around it. */
async function viaClient(service: ServiceProcess, ask: () => Promise<Reply>) {
  let reply: Reply = { ms: 0, cpuMs: 0 };
  const measured = await measure(service, async () => void (reply = await ask()));
  return { measured: { ...measured, ms: reply.ms, clientCpuMs: reply.cpuMs }, id: reply.id };
}

/**
 * 200 MB up and down through the API beside a bare `docker exec cat` of the same bytes into the
 * same sandbox, ROUNDS times each (alternating which goes first), each round's pair compared.
 */
export async function benchFiles(berth: BenchBerth): Promise<Row[]> {
  const res = await berth.api('/v1/containers', {
    method: 'POST',
    body: JSON.stringify({ name: 'bench-files' }),
  });
  const { id } = (await res.json()) as { id: string };
  const mb = SIZE / 2 ** 20;
  const api = { up: [] as Measured[], down: [] as Measured[] };
  const bare = { up: [] as Measured[], down: [] as Measured[] };
  const client = startClient();
  try {
    const sandbox = await berth.sandboxOf(id);
    const user = await userOf(sandbox);
    // The claim made the filler start a sandbox: let it finish, so it doesn't load one side only
    // (at most a minute: on a busy host the pool may not fill, and the rounds alternate anyway).
    await poolsFull(berth);
    const viaApi = async () => {
      const up = await viaClient(berth.service, () =>
        client.ask({
          op: 'upload',
          url: `${berth.url}/v1/containers/${id}/files`,
          apiKey: berth.apiKey,
          chunk: CHUNK,
          size: SIZE,
        }),
      );
      api.up.push(up.measured);
      const fileId = up.id ?? '';
      const down = await viaClient(berth.service, () =>
        client.ask({
          op: 'download',
          url: `${berth.url}/v1/containers/${id}/files/${fileId}/content`,
          apiKey: berth.apiKey,
          size: SIZE,
        }),
      );
      api.down.push(down.measured);
      await berth.api(`/v1/containers/${id}/files/${fileId}`, { method: 'DELETE' });
    };
    const viaBare = async () => {
      bare.up.push(await measure(bench, () => bareUpload(sandbox, user)));
      bare.down.push(await measure(bench, () => bareDownload(sandbox, user)));
      await bareRemove(sandbox, user);
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 ? [viaBare, viaApi] : [viaApi, viaBare]) await side();
    }
  } finally {
    client.close();
    await berth.api(`/v1/containers/${id}`, { method: 'DELETE' });
  }
  const rate = (runs: Measured[]) => mb / (median(runs.map((r) => r.ms)) / 1000);
  // Each round's API and bare transfers ran back to back: their ratio cancels the drift of this
  // shared machine's load between rounds, which the ratio of two medians does not.
  const paired = (a: Measured[], b: Measured[]) => median(a.map((r, i) => b[i]!.ms / r.ms));
  const rows: Row[] = [];
  for (const [dir, label] of [
    ['up', 'upload 200 MB: HTTP multipart → sandbox'],
    ['down', 'download 200 MB: HTTP ← sandbox'],
  ] as const) {
    const a = api[dir];
    const b = bare[dir];
    const note = `median of ${ROUNDS}`;
    rows.push(
      { name: label, value: rate(a), unit: 'MB/s', note },
      { name: `${label.split(':')[0]}: bare docker exec cat`, value: rate(b), unit: 'MB/s', note },
      {
        name: `${label.split(':')[0]}: ratio API/bare`,
        value: paired(a, b),
        unit: 'x',
        note: `median of ${ROUNDS} rounds' ratios; of the medians: ${(rate(a) / rate(b)).toFixed(2)}`,
      },
      {
        name: `${label.split(':')[0]}: CPU, the service (API) / the bare client`,
        value: median(a.map((r) => r.cpuMs)) / median(b.map((r) => r.cpuMs)),
        unit: 'x',
        note: `${median(a.map((r) => r.cpuMs)).toFixed(0)} ms vs ${median(b.map((r) => r.cpuMs)).toFixed(0)} ms`,
      },
      {
        name: `${label.split(':')[0]}: CPU of the HTTP client (API only)`,
        value: median(a.map((r) => r.clientCpuMs ?? 0)),
        unit: 'ms',
        note: 'its own process, on the same cores',
      },
      {
        name: `${label.split(':')[0]}: service RSS growth (max)`,
        value: Math.max(...a.map((r) => r.rssGrowth)) / 2 ** 20,
        unit: 'MiB',
        note: 'peak over the RSS before it',
      },
    );
  }
  return rows;
}
