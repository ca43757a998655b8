import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { sandboxImage, testDocker } from '@berth/testkit';
import { percentile, time, type BenchBerth, type Row } from './harness.js';
import { poolReady } from './containers.js';

const docker = testDocker.docker;
const STEPS = ['create', 'exec', 'upload', 'download', 'delete'] as const;
type Step = (typeof STEPS)[number];
const PAYLOAD = randomBytes(1024 * 1024);

export interface LoadOptions {
  seconds: number;
  agents?: number;
}

interface Tally {
  loops: number;
  errors: number;
  firstError: string | null;
  samples: Record<Step, number[]>;
}

const tally = (): Tally => ({
  loops: 0,
  errors: 0,
  firstError: null,
  samples: { create: [], exec: [], upload: [], download: [], delete: [] },
});

/** `agents` loops at once for `seconds`; each loop is the five steps in order, each timed. */
async function drive(
  seconds: number,
  agents: number,
  loop: (step: <T>(name: Step, fn: () => Promise<T>) => Promise<T>) => Promise<void>,
): Promise<Tally & { elapsedMs: number }> {
  const t = tally();
  const stopAt = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: agents }, async () => {
      while (Date.now() < stopAt) {
        try {
          await loop(async (name, fn) => {
            const [ms, value] = await time(fn);
            t.samples[name].push(ms);
            return value;
          });
          t.loops += 1;
        } catch (error) {
          t.errors += 1;
          t.firstError ??= String((error as Error).message ?? error);
        }
      }
    }),
  );
  return { ...t, elapsedMs: Date.now() - started };
}

async function ok(res: Response, what: string): Promise<Response> {
  if (res.status !== 200) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

/** The API's loop: create → exec python3 → upload 1 MB → download it → delete. */
function apiLoop(berth: BenchBerth) {
  return async (step: <T>(name: Step, fn: () => Promise<T>) => Promise<T>) => {
    const { id } = await step(
      'create',
      async () =>
        (await (
          await ok(
            await berth.api('/v1/containers', {
              method: 'POST',
              body: JSON.stringify({ name: 'load' }),
            }),
            'create',
          )
        ).json()) as { id: string },
    );
    try {
      await step('exec', async () => {
        const r = (await (
          await ok(
            await berth.api(`/v1/containers/${id}/exec`, {
              method: 'POST',
              body: JSON.stringify({ command: ['python3', '-c', 'print(1)'] }),
            }),
            'exec',
          )
        ).json()) as { stdout: string };
        if (r.stdout !== '1\n') throw new Error(`exec printed ${JSON.stringify(r.stdout)}`);
      });
      const file = await step('upload', async () => {
        const form = new FormData();
        form.append('file', new Blob([PAYLOAD]), 'load.bin');
        const r = await fetch(`${berth.url}/v1/containers/${id}/files`, {
          method: 'POST',
          headers: { authorization: `Bearer ${berth.apiKey}` },
          body: form,
        });
        return (await (await ok(r, 'upload')).json()) as { id: string };
      });
      await step('download', async () => {
        const r = await ok(
          await berth.api(`/v1/containers/${id}/files/${file.id}/content`),
          'download',
        );
        const got = Buffer.from(await r.arrayBuffer());
        if (!got.equals(PAYLOAD)) throw new Error('download differs from the upload');
      });
    } finally {
      await step('delete', async () =>
        ok(await berth.api(`/v1/containers/${id}`, { method: 'DELETE' }), 'delete'),
      );
    }
  };
}

/** Runs a command in a container with optional stdin; resolves with stdout. */
async function bareExec(
  container: Dockerode.Container,
  user: string,
  cmd: string[],
  stdin?: Buffer,
): Promise<Buffer> {
  const exec = await container.exec({
    Cmd: cmd,
    User: user,
    AttachStdin: stdin !== undefined,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({ hijack: true, stdin: stdin !== undefined })) as Duplex;
  const out: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    docker.modem.demuxStream(
      stream,
      { write: (c: Buffer) => out.push(c) } as unknown as NodeJS.WritableStream,
      { write: () => true } as unknown as NodeJS.WritableStream,
    );
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  if (stdin !== undefined) stream.end(stdin);
  await done;
  const { ExitCode } = await exec.inspect();
  if (ExitCode !== 0) throw new Error(`bare exec ${cmd[0]} exited ${ExitCode}`);
  return Buffer.concat(out);
}

/** The same loop with bare dockerode calls: the twin of the API's loop. */
const bareLoop = async (step: <T>(name: Step, fn: () => Promise<T>) => Promise<T>) => {
  const user = '100001:100001';
  const container = await step('create', async () => {
    const c = await docker.createContainer({
      Image: sandboxImage(),
      User: user,
      Labels: { 'org.berth.bench': 'true' },
      HostConfig: {
        NetworkMode: 'none',
        Memory: 1024 ** 3,
        MemorySwap: 1024 ** 3,
        Tmpfs: { '/mnt/data': `rw,size=512m,uid=100001,gid=100001,mode=0755` },
      },
    });
    await c.start();
    return c;
  });
  try {
    await step('exec', async () => {
      const out = await bareExec(container, user, ['python3', '-c', 'print(1)']);
      if (out.toString() !== '1\n') throw new Error('bare exec printed something else');
    });
    await step('upload', () =>
      bareExec(container, user, ['sh', '-c', 'cat > /mnt/data/load.bin'], PAYLOAD),
    );
    await step('download', async () => {
      const got = await bareExec(container, user, ['cat', '/mnt/data/load.bin']);
      if (!got.equals(PAYLOAD)) throw new Error('bare download differs');
    });
  } finally {
    await step('delete', () => container.remove({ force: true }));
  }
};

/**
 * 16 agents looping create → exec → upload 1 MB → download → delete through the API (warm pool
 * on), then the same loop with bare dockerode calls, for the ratio. Errors must be 0.
 */
export async function benchLoad(berth: BenchBerth, options: LoadOptions): Promise<Row[]> {
  const agents = options.agents ?? 16;
  await poolReady(berth, agents);
  const claimsBefore = await poolCounters(berth);
  const api = await drive(options.seconds, agents, apiLoop(berth));
  const claims = (await poolCounters(berth)) - claimsBefore;
  const bare = await drive(options.seconds, agents, bareLoop);
  const rows: Row[] = [];
  const rate = (t: { loops: number; elapsedMs: number }) => t.loops / (t.elapsedMs / 1000);
  const label = `load ${agents} agents ${options.seconds}s`;
  rows.push({ name: `${label}: API loops/s`, value: rate(api), unit: '/s' });
  rows.push({ name: `${label}: bare loops/s`, value: rate(bare), unit: '/s' });
  rows.push({
    name: `${label}: ratio API/bare throughput`,
    value: rate(api) / rate(bare),
    unit: 'x',
  });
  rows.push({
    name: `${label}: API errors`,
    value: api.errors,
    unit: 'n',
    ...(api.firstError ? { note: api.firstError.slice(0, 120) } : {}),
  });
  rows.push({
    name: `${label}: bare errors`,
    value: bare.errors,
    unit: 'n',
    ...(bare.firstError ? { note: bare.firstError.slice(0, 120) } : {}),
  });
  rows.push({
    name: `${label}: pool hit rate`,
    value: api.samples.create.length ? (100 * claims) / api.samples.create.length : 0,
    unit: '%',
  });
  for (const s of STEPS)
    for (const p of [50, 99]) {
      const a = percentile(api.samples[s], p);
      const b = percentile(bare.samples[s], p);
      rows.push({ name: `${label}: ${s} p${p} API`, value: a, unit: 'ms' });
      rows.push({ name: `${label}: ${s} p${p} bare`, value: b, unit: 'ms' });
      rows.push({ name: `${label}: ${s} p${p} ratio`, value: a / b, unit: 'x' });
    }
  return rows;
}

/** Creates served by the warm pool so far, from the service's metrics (rows go with deletes). */
async function poolCounters(berth: BenchBerth): Promise<number> {
  const text = await (
    await fetch(`${berth.url}/metrics`, {
      headers: { authorization: `Bearer ${berth.metricsToken}` },
    })
  ).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('berth_pool_claims_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}
