import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SEND_BUFFER, probeSendBuffer, sendBufferOf, setSendBuffer } from './index.js';

const MiB = 1024 * 1024;
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** A connected Unix socket pair: `server` is the accepted end (the one the service writes to). */
async function pair(): Promise<{ server: Socket; client: Socket }> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sndbuf-'));
  const path = join(dir, 's.sock');
  const listener: Server = createServer();
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  const client = connect(path);
  const server = await accepted;
  cleanup.push(() => {
    client.destroy();
    server.destroy();
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { server, client };
}

/**
 * Bytes the kernel takes from `socket` while the peer reads nothing: 16 MiB written in 64 KiB
 * pieces, counted as each piece's write completes (libuv finishes a piece once the kernel has it).
 */
async function heldByKernel(socket: Socket): Promise<number> {
  const piece = Buffer.alloc(64 * 1024);
  let held = 0;
  for (let i = 0; i < 256; i++) socket.write(piece, () => (held += piece.length));
  await new Promise((r) => setTimeout(r, 100));
  return held;
}

describe('setSendBuffer', () => {
  it('gives an accepted Unix socket the buffer asked for (the kernel books twice it)', async () => {
    const { server } = await pair();
    const before = sendBufferOf(server);
    expect(before).toBeGreaterThan(0);
    expect(setSendBuffer(server, DEFAULT_SEND_BUFFER)).toBe(true);
    // As root (CI, the dev service) SO_SNDBUFFORCE passes net.core.wmem_max; otherwise the
    // kernel caps the value there.
    const after = sendBufferOf(server)!;
    expect(after).toBeGreaterThan(before!);
    if (process.getuid?.() === 0) expect(after).toBe(2 * DEFAULT_SEND_BUFFER);
  });

  it('lets the kernel hold megabytes for a peer that is not reading yet, not 200 KiB', async () => {
    const plain = await pair();
    const tuned = await pair();
    setSendBuffer(tuned.server, DEFAULT_SEND_BUFFER);
    const [held, heldTuned] = [await heldByKernel(plain.server), await heldByKernel(tuned.server)];
    expect(held).toBeLessThan(512 * 1024);
    expect(heldTuned).toBeGreaterThan(MiB);
    // Nothing was lost: the peer reads every byte once it starts.
    let read = 0;
    tuned.client.on('data', (c: Buffer) => (read += c.length));
    await new Promise<void>((resolve) => tuned.server.end(resolve));
    await new Promise((resolve) => tuned.client.once('end', resolve));
    expect(read).toBe(16 * MiB);
  });

  it('sets nothing for 0, and never throws for a socket already closed', async () => {
    const { server } = await pair();
    const before = sendBufferOf(server);
    expect(setSendBuffer(server, 0)).toBe(false);
    expect(sendBufferOf(server)).toBe(before);
    server.destroy();
    expect(setSendBuffer(server, DEFAULT_SEND_BUFFER)).toBe(false);
    expect(sendBufferOf(server)).toBeNull();
  });
});

describe('probeSendBuffer', () => {
  it('says what a socket asking for the buffer gets', async () => {
    const probe = await probeSendBuffer(DEFAULT_SEND_BUFFER);
    expect(probe.asked).toBe(DEFAULT_SEND_BUFFER);
    expect(probe.effective).toBeGreaterThan(0);
    if (process.getuid?.() === 0) expect(probe).toEqual({ asked: 2 * MiB, effective: 4 * MiB });
  });

  it('says the kernel default is kept when asked for nothing', async () => {
    expect(await probeSendBuffer(0)).toEqual({
      asked: 0,
      effective: null,
      note: 'off: the kernel default is kept',
    });
  });
});
