import { PassThrough, type Readable } from 'node:stream';

/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers) into stdout and stderr,
 * with backpressure: while stdout's reader is slow, the socket is not read, so a large file
 * never piles up in memory. stderr is kept up to `stderrCap` bytes.
 */
export function demux(
  source: Readable,
  stderrCap = 64 * 1024,
): { stdout: PassThrough; stderr: Promise<string> } {
  const stdout = new PassThrough({ highWaterMark: 1024 * 1024 });
  const errChunks: Buffer[] = [];
  let errBytes = 0;
  const stderr = (async () => {
    let pending: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of source) {
        pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
        while (pending.length >= 8) {
          const size = pending.readUInt32BE(4);
          if (pending.length < 8 + size) break;
          const kind = pending[0];
          const payload = pending.subarray(8, 8 + size);
          pending = pending.subarray(8 + size);
          if (kind === 1) {
            if (!stdout.write(payload)) await new Promise<void>((r) => stdout.once('drain', r));
          } else if (kind === 2 && errBytes < stderrCap) {
            errChunks.push(payload);
            errBytes += payload.length;
          }
        }
      }
      stdout.end();
    } catch (error) {
      stdout.destroy(error as Error);
    }
    return Buffer.concat(errChunks).toString('utf8').slice(0, stderrCap);
  })();
  return { stdout, stderr };
}
