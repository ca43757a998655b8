import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PayloadTooLargeError, type BlobStore } from '@berth/core';

const SAFE_KEY = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Blobs as files in one directory. A blob is written to a temporary name in the same directory,
 * fsynced, then renamed: a crash never leaves a half-written blob under its real name.
 */
export class FsBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  #path(key: string): string {
    if (!SAFE_KEY.test(key)) throw new Error(`unsafe blob key: ${key}`);
    return join(this.dir, key);
  }

  async put(
    key: string,
    data: Readable,
    { maxBytes }: { maxBytes: number },
  ): Promise<{ bytes: number }> {
    const target = this.#path(key);
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `.tmp-${key}-${randomBytes(6).toString('hex')}`);
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > maxBytes)
          done(new PayloadTooLargeError(`File too large: the limit is ${maxBytes} bytes.`));
        else done(null, chunk);
      },
    });
    // Created before any byte flows: a write stream that opened the file by its name could
    // create it after a failure had removed it (a body over the limit at its first chunks) and
    // leave it behind. The stream closes the handle as it ends or fails.
    const file = await open(temp, 'wx', 0o600);
    try {
      await pipeline(data, count, file.createWriteStream());
      const handle = await open(temp, 'r');
      await handle.sync();
      await handle.close();
      await rename(temp, target);
      return { bytes };
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async open(key: string): Promise<{ size: number; stream: Readable } | null> {
    const path = this.#path(key);
    try {
      const { size } = await stat(path);
      return { size, stream: createReadStream(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }
}
