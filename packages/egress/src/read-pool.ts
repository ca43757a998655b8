/**
 * Read buffers lent to upstream sockets and given back once their bytes are written on, so a bulk
 * relay neither copies each read out of one buffer nor allocates a fresh one per read (both cost
 * more than the relay's own work: the copy, or the collector running for the allocations). Only a
 * consumer that owns each chunk (one write of it, then `give`) may read through a pool; a chunk
 * never given back is left to the collector.
 */
export class ReadPool {
  readonly #free: Buffer[] = [];
  /** Lent and not given back yet: a second `give` of the same read is ignored. */
  readonly #lent = new WeakSet<ArrayBufferLike>();

  constructor(
    readonly size: number,
    /** How many free buffers are kept for the next reads; more given back are dropped. */
    readonly keep: number,
  ) {}

  take(): Buffer {
    const b = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.#lent.add(b.buffer);
    return b;
  }

  /** Takes back the buffer `chunk` was read into, once nothing will read `chunk` again. */
  give(chunk: Uint8Array): void {
    const ab = chunk.buffer;
    if (!this.#lent.delete(ab) || this.#free.length >= this.keep) return;
    this.#free.push(Buffer.from(ab));
  }
}
