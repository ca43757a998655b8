/**
 * The HTTP client of the transfer bench, in a process of its own (bench/files.ts forks it), as a
 * client of the API is: the service's process then carries the service's work and memory only.
 * Asked over IPC for one transfer at a time; answers with the time it took.
 */
import { randomBytes } from 'node:crypto';

export type ClientRequest =
  | { op: 'upload'; url: string; apiKey: string; chunk: Uint8Array; size: number }
  | { op: 'download'; url: string; apiKey: string; size: number };
/** `cpuMs`: this process's CPU for the transfer; it shares the host's cores with the service. */
export type ClientReply =
  { ms: number; cpuMs: number; id?: string; bytes?: number } | { error: string };

async function* bytes(chunk: Buffer, size: number) {
  for (let sent = 0; sent < size; sent += chunk.length)
    yield chunk.subarray(0, Math.min(chunk.length, size - sent));
}

/** A multipart form of one `file` part, streamed from `chunk` repeated up to `size` bytes. */
function multipart(name: string, chunk: Buffer, size: number) {
  const boundary = `bench${randomBytes(6).toString('hex')}`;
  async function* parts() {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    yield* bytes(chunk, size);
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

async function run(req: ClientRequest): Promise<ClientReply> {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
  const cpuMs = () => {
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / 1000;
  };
  if (req.op === 'upload') {
    const form = multipart('big.bin', Buffer.from(req.chunk), req.size);
    const r = await fetch(req.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${req.apiKey}`, 'content-type': form.contentType },
      body: form.body,
      duplex: 'half',
    } as RequestInit);
    const created = (await r.json()) as { id: string; bytes: number };
    if (created.bytes !== req.size) return { error: `upload stored ${created.bytes} bytes` };
    return { ms: ms(), cpuMs: cpuMs(), id: created.id, bytes: created.bytes };
  }
  const r = await fetch(req.url, { headers: { authorization: `Bearer ${req.apiKey}` } });
  let total = 0;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) total += chunk.length;
  if (total !== req.size) return { error: `downloaded ${total} bytes` };
  return { ms: ms(), cpuMs: cpuMs(), bytes: total };
}

// The bench is done with it (or gone): nothing keeps this process.
process.once('disconnect', () => process.exit(0));
process.on('message', (req: ClientRequest) => {
  run(req).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ error: String(error) }),
  );
});
