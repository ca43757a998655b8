import { randomBytes } from 'node:crypto';
import { time, type BenchBerth, type Row } from './harness.js';
import { testDocker } from '@berth/testkit';

// The bare twin: dockerode itself, through the one client (no Berth helper in the way).
const docker = testDocker.docker;
const SIZE = 200 * 1024 * 1024;
const CHUNK = randomBytes(1024 * 1024);

async function* bytes(size: number) {
  for (let sent = 0; sent < size; sent += CHUNK.length)
    yield CHUNK.subarray(0, Math.min(CHUNK.length, size - sent));
}

function multipart(name: string, size: number) {
  const boundary = `bench${randomBytes(6).toString('hex')}`;
  async function* parts() {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    yield* bytes(size);
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const it = parts();
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    body: new ReadableStream({
      async pull(c) {
        const { value, done } = await it.next();
        if (done) c.close();
        else c.enqueue(value);
      },
    }),
  };
}

/** The service's RSS peak while `fn` runs (the bench runs the service in this process). */
async function peakRss<T>(fn: () => Promise<T>): Promise<[number, T]> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const value = await fn();
    return [peak, value];
  } finally {
    clearInterval(timer);
  }
}

/** The same bytes through a bare `docker exec … cat` (docker cp can't write into a tmpfs mount). */
/** The sandbox's own user (each sandbox has a uid of its own): what its code runs as. */
const userOf = async (name: string): Promise<string> =>
  (await docker.getContainer(name).inspect()).Config.User;

async function bareUpload(name: string): Promise<void> {
  const exec = await docker.getContainer(name).exec({
    Cmd: ['sh', '-c', 'cat > /mnt/data/bare.bin'],
    User: await userOf(name),
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  let failed: Error | null = null;
  stream.on('error', (error: Error) => (failed = error));
  for await (const chunk of bytes(SIZE)) {
    if (failed) throw new Error(`bare upload failed: ${(failed as Error).message}`);
    if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await new Promise((r) => stream.once('end', r));
}

async function bareDownload(name: string): Promise<number> {
  const exec = await docker.getContainer(name).exec({
    Cmd: ['cat', '/mnt/data/bare.bin'],
    User: await userOf(name),
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  let total = 0;
  for await (const chunk of stream) total += (chunk as Buffer).length;
  return total;
}

export async function benchFiles(berth: BenchBerth): Promise<Row[]> {
  const res = await berth.api('/v1/containers', {
    method: 'POST',
    body: JSON.stringify({ name: 'bench-files' }),
  });
  const { id } = (await res.json()) as { id: string };
  const mb = SIZE / 2 ** 20;
  try {
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    const [upPeak, [upMs, created]] = await peakRss(() =>
      time(async () => {
        const form = multipart('big.bin', SIZE);
        const r = await fetch(`${berth.url}/v1/containers/${id}/files`, {
          method: 'POST',
          headers: { authorization: `Bearer ${berth.apiKey}`, 'content-type': form.contentType },
          body: form.body,
          duplex: 'half',
        } as RequestInit);
        return (await r.json()) as { id: string; bytes: number };
      }),
    );
    if (created.bytes !== SIZE) throw new Error(`upload stored ${created.bytes} bytes`);
    const [downPeak, [downMs]] = await peakRss(() =>
      time(async () => {
        const r = await berth.api(`/v1/containers/${id}/files/${created.id}/content`);
        let total = 0;
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>)
          total += chunk.length;
        if (total !== SIZE) throw new Error(`downloaded ${total} bytes`);
      }),
    );
    await berth.api(`/v1/containers/${id}/files/${created.id}`, { method: 'DELETE' });
    const sandbox = await berth.sandboxOf(id);
    const [bareUpMs] = await time(() => bareUpload(sandbox));
    const [bareDownMs] = await time(() => bareDownload(sandbox));
    return [
      { name: 'upload 200 MB: HTTP multipart → sandbox', value: mb / (upMs / 1000), unit: 'MB/s' },
      { name: 'upload 200 MB: bare docker exec cat', value: mb / (bareUpMs / 1000), unit: 'MB/s' },
      { name: 'download 200 MB: HTTP ← sandbox', value: mb / (downMs / 1000), unit: 'MB/s' },
      {
        name: 'download 200 MB: bare docker exec cat',
        value: mb / (bareDownMs / 1000),
        unit: 'MB/s',
      },
      { name: 'service RSS before transfers', value: baseline / 2 ** 20, unit: 'MiB' },
      { name: 'service RSS peak during upload', value: upPeak / 2 ** 20, unit: 'MiB' },
      { name: 'service RSS peak during download', value: downPeak / 2 ** 20, unit: 'MiB' },
    ];
  } finally {
    await berth.api(`/v1/containers/${id}`, { method: 'DELETE' });
  }
}
