import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { splice, type Spliced } from './splice.js';

const servers: net.Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function listen(onSocket: (s: net.Socket) => void, allowHalfOpen = false): Promise<number> {
  const server = net.createServer({ allowHalfOpen }, onSocket);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/**
 * A relay on loopback, as the proxy has it: the client's socket (half-open, as node's HTTP
 * server makes them) spliced to a fresh connection to `upstreamPort`.
 */
async function relay(
  upstreamPort: number,
  idleMs = 5_000,
): Promise<{ port: number; ended: Promise<{ counts: Spliced; failure?: string }> }> {
  let ended!: (v: { counts: Spliced; failure?: string }) => void;
  const done = new Promise<{ counts: Spliced; failure?: string }>((r) => (ended = r));
  const port = await listen((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    splice(client, upstream, idleMs, (counts, failure) =>
      ended({ counts: { ...counts }, ...(failure ? { failure } : {}) }),
    );
  }, true);
  return { port, ended: done };
}

function readAll(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('splice', () => {
  it('delivers everything an upstream sends before it closes, to a client slower than it', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 'y');
    let upstreamGone!: () => void;
    const gone = new Promise<void>((r) => (upstreamGone = r));
    const upstream = await listen((s) => {
      s.end(body, upstreamGone);
    });
    const { port, ended } = await relay(upstream);
    const client = net.connect(port, '127.0.0.1');
    // Reads nothing until the upstream has sent all: the relay holds what the kernel can't.
    client.pause();
    await gone;
    const got = readAll(client);
    client.resume();
    expect((await got).length).toBe(body.length);
    const { counts, failure } = await ended;
    expect(failure).toBeUndefined();
    expect(counts.down).toBe(body.length);
  });

  it("delivers everything a client sends before its end, and the upstream's answer after it", async () => {
    const upload = Buffer.alloc(4 * 1024 * 1024, 'u');
    // Answers with the length it read, once the client has ended its half.
    const upstream = await listen((s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => s.end(String(n)));
    }, true);
    const { port, ended } = await relay(upstream);
    const client = net.connect(port, '127.0.0.1');
    const answer = readAll(client);
    client.end(upload);
    expect((await answer).toString()).toBe(String(upload.length));
    expect((await ended).counts).toEqual({ up: upload.length, down: String(upload.length).length });
  });

  it('closes both sides after idleMs without a byte either way, and says why', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const upstream = await listen((s) => s.on('close', upstreamClosed));
    const { port, ended } = await relay(upstream, 100);
    const client = net.connect(port, '127.0.0.1');
    await readAll(client);
    await closed;
    expect((await ended).failure).toBe('closed after 100 ms without traffic');
  });

  it('closes the client at once when the upstream resets', async () => {
    const upstream = await listen((s) => s.write('partial', () => s.resetAndDestroy()));
    const { port, ended } = await relay(upstream);
    const got = readAll(net.connect(port, '127.0.0.1')).catch(() => Buffer.alloc(0));
    await got;
    expect((await ended).failure).toMatch(/^upstream: /);
  });
});
