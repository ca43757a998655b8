import type { Writable } from 'node:stream';

const RS = 0x1e;

/**
 * The supervisor's exit trailer, `\x1eberth-exit TAG CODE\n`, the last bytes of stdout. Output
 * passes on as it arrives, except a tail that may be the start of this run's trailer (it begins
 * with `\x1e`, which output seldom holds): that is held until more output shows it was not, or the
 * stream ends. At the end a complete trailer gives the exit code; anything else held is output.
 * The command can print a trailer of its own, but the supervisor writes the real one after the
 * command's whole tree is gone, so only the last is read.
 */
export class ExitTrailer {
  readonly #prefix: Buffer;
  /** The longest trailer: the prefix, three digits, the newline. */
  readonly #size: number;
  #held: Buffer | null = null;
  code: number | null = null;

  constructor(
    private readonly out: Writable,
    tag: string,
  ) {
    this.#prefix = Buffer.from(`\x1eberth-exit ${tag} `, 'latin1');
    this.#size = this.#prefix.length + 4;
  }

  /** Passes on what can't be the trailer; false when `out` asks to wait. */
  write(payload: Buffer): boolean {
    const data = this.#held ? Buffer.concat([this.#held, payload]) : payload;
    this.#held = null;
    const from = Math.max(0, data.length - this.#size);
    const rs = data.subarray(from).lastIndexOf(RS);
    let keep = data.length;
    if (rs >= 0 && this.#couldBe(data.subarray(from + rs))) {
      keep = from + rs;
      this.#held = Buffer.from(data.subarray(keep));
    }
    if (keep === 0) return true;
    return this.out.write(keep === data.length ? data : data.subarray(0, keep));
  }

  /** The stream ended: a complete trailer gives the code; anything else held is output. */
  finish(): void {
    const held = this.#held;
    this.#held = null;
    if (!held) return;
    const digits = this.#complete(held);
    if (digits !== null) this.code = digits;
    else if (!this.out.destroyed) this.out.write(held);
  }

  /** Whether `tail` (starting at a `\x1e`) is this trailer so far. */
  #couldBe(tail: Buffer): boolean {
    const p = this.#prefix;
    if (tail.length <= p.length) return p.subarray(0, tail.length).equals(tail);
    if (!tail.subarray(0, p.length).equals(p)) return false;
    return /^(\d{0,3}|\d{1,3}\n)$/.test(tail.subarray(p.length).toString('latin1'));
  }

  #complete(tail: Buffer): number | null {
    const p = this.#prefix;
    if (tail.length <= p.length || !tail.subarray(0, p.length).equals(p)) return null;
    const m = /^(\d{1,3})\n$/.exec(tail.subarray(p.length).toString('latin1'));
    return m ? Number(m[1]) : null;
  }
}
