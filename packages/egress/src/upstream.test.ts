import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ReadPool } from './read-pool.js';
import { COPY_BELOW, openUpstream, READ_BUFFER } from './upstream.js';

/** A pool that counts the buffers it hands out. */
class CountingPool extends ReadPool {
  taken = 0;
  override take(): Buffer {
    this.taken += 1;
    return super.take();
  }
}

let server: net.Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** An upstream that sends `pieces` writes of `size` bytes, a tick apart, then closes. */
async function trickle(pieces: number, size: number): Promise<number> {
  server = net.createServer(async (s) => {
    for (let i = 0; i < pieces; i++) {
      s.write(Buffer.alloc(size, 97));
      await new Promise((r) => setTimeout(r, 1));
    }
    s.end();
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Reads everything, holding every chunk (as a client that never drains would make it). */
async function readAll(port: number, pool: ReadPool): Promise<Buffer[]> {
  const s = await openUpstream({ address: '127.0.0.1', port }, 'up.test', undefined, 5_000, pool);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => s.once('close', r));
  return chunks;
}

describe('openUpstream reading into a pool', () => {
  it('copies short reads out, so a trickle does not hold a pool buffer per packet', async () => {
    const pool = new CountingPool(READ_BUFFER, 8);
    const chunks = await readAll(await trickle(200, 100), pool);
    expect(Buffer.concat(chunks).length).toBe(200 * 100);
    // Nothing was given back, yet one buffer served every read.
    expect(pool.taken).toBe(1);
    expect(chunks.every((c) => c.buffer.byteLength < READ_BUFFER)).toBe(true);
  });

  it('lends the buffer itself for a long read', async () => {
    const pool = new CountingPool(READ_BUFFER, 8);
    const chunks = await readAll(await trickle(4, 2 * READ_BUFFER), pool);
    expect(Buffer.concat(chunks).length).toBe(8 * READ_BUFFER);
    const lent = chunks.filter((c) => c.length >= COPY_BELOW);
    expect(lent.length).toBeGreaterThan(0);
    expect(lent.every((c) => c.buffer.byteLength === READ_BUFFER)).toBe(true);
  });
});
