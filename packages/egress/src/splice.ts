import net from 'node:net';
import type { Duplex } from 'node:stream';
import { idleReason } from './exchange.js';

export interface Spliced {
  /** Bytes the client sent on (to the upstream) and the upstream sent back, so far. */
  readonly up: number;
  readonly down: number;
}

/**
 * Relays raw bytes both ways between a client and an upstream, with nothing per chunk but a
 * count: each side's end becomes an end of the other (half-close, as TCP has it), and one that
 * closes leaves the other to send what it still holds before it is closed too, so nothing is cut
 * short. An error on either, or `idleMs` with no byte either way, closes both at once. `done` is
 * called once, when both are closed, with why if it was not a clean end.
 */
export function splice(
  client: Duplex,
  upstream: Duplex,
  idleMs: number,
  done: (counts: Spliced, failure?: string) => void,
): Spliced {
  const counts = { up: 0, down: 0 };
  let failure: string | undefined;
  let open = 2;
  const kill = (why: string) => {
    failure ??= why;
    client.destroy();
    upstream.destroy();
  };
  const closed = (other: Duplex) => () => {
    // What the other still has to write goes out first; then it closes.
    if (!other.destroyed) other.end(() => other.destroy());
    if (--open === 0) done(counts, failure);
  };
  // Silent both ways: a write to one socket is a read from the other, so either timer says it.
  const idle = () => kill(idleReason(idleMs));
  for (const s of [client, upstream]) {
    if (s instanceof net.Socket) s.setTimeout(idleMs);
    s.on('timeout', idle);
  }
  client.on('error', (e) => kill(`client: ${e.message}`));
  upstream.on('error', (e) => kill(`upstream: ${e.message}`));
  client.on('close', closed(upstream));
  upstream.on('close', closed(client));
  client.on('data', (c: Buffer) => (counts.up += c.length));
  upstream.on('data', (c: Buffer) => (counts.down += c.length));
  client.pipe(upstream);
  upstream.pipe(client);
  return counts;
}
