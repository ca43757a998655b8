import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PayloadTooLargeError } from '@berth/core';
import { FsBlobStore } from './fs-blob-store.js';

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-blobs-'));
  store = new FsBlobStore(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('FsBlobStore', () => {
  it('stores and streams back bytes exactly', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    expect(
      await store.put('file-a', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
        maxBytes: 10 ** 8,
      }),
    ).toEqual({ bytes: data.length });
    const blob = await store.open('file-a');
    expect(blob?.size).toBe(data.length);
    const chunks: Buffer[] = [];
    for await (const c of blob!.stream) chunks.push(c as Buffer);
    expect(sha(Buffer.concat(chunks))).toBe(sha(data));
  });

  it('refuses past the limit and leaves nothing, not even a temporary file', async () => {
    const big = Readable.from([randomBytes(600), randomBytes(600)]);
    await expect(store.put('file-b', big, { maxBytes: 1000 })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await readdir(dir)).toEqual([]);
    expect(await store.open('file-b')).toBeNull();
  });

  it('leaves nothing visible when the source stream fails midway', async () => {
    const failing = new Readable({
      read() {
        this.push(randomBytes(100));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(store.put('file-c', failing, { maxBytes: 10 ** 6 })).rejects.toThrow(
      'client went away',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('never maps a key outside its directory, and deletes idempotently', async () => {
    await expect(
      store.put('../escape', Readable.from([Buffer.from('x')]), { maxBytes: 10 }),
    ).rejects.toThrow(/unsafe/);
    await store.delete('file-missing');
    expect(await store.open('file-missing')).toBeNull();
  });
});
