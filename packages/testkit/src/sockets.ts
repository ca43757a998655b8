import type net from 'node:net';

/**
 * Tracks the two ends of a relayed connection in `open` (so a test server can cut them all at
 * once) and tears both down when either fails.
 */
export function relayPair(open: Set<net.Socket>, client: net.Socket, upstream: net.Socket): void {
  for (const s of [client, upstream]) {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {
      client.destroy();
      upstream.destroy();
    });
  }
}
