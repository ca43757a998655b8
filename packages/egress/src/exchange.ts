import type { Duplex } from 'node:stream';
import { matchHost, normalizeHost, type Rule } from './allowlist.js';
import { EgressDenied, type Resolver } from './resolver.js';
import type { Decision } from './stats.js';
import type { Interception } from './intercept.js';
import type { UpstreamProxy } from './upstream.js';

const ALLOWED_PORTS = new Set([80, 443]);

export interface Verdict {
  host: string;
  /** The checked, pinned address to connect to; absent when refused. */
  target?: { address: string; port: number };
  reason?: string;
}

/** What a CONNECT tunnel or an HTTP forward needs from the proxy that serves its sandbox. */
export interface Exchange {
  judge(rawHost: string, port: number): Promise<Verdict>;
  record(d: Omit<Decision, 'containerId'>): void;
  /** Close an exchange after this long without a byte in either direction. */
  idleMs: number;
  /** For a host that has secrets: how to intercept its HTTPS. Others are tunnelled untouched. */
  interception?(host: string): Interception | undefined;
  /** Every upstream connection goes through this proxy, by CONNECT with the name. */
  upstreamProxy?: UpstreamProxy;
}

/**
 * The decision of an exchange that was allowed: the bytes it moved (the client's up, the answer's
 * down), and `reason` when it ended short of a full answer.
 */
export const allowedDecision = (
  host: string,
  port: number,
  bytes: { up: number; down: number },
  reason?: string,
): Omit<Decision, 'containerId'> => ({
  decision: 'allowed',
  host,
  port,
  ...(reason ? { reason } : {}),
  bytesUp: bytes.up,
  bytesDown: bytes.down,
});

/** Why an exchange was closed by the idle timer. */
export const idleReason = (idleMs: number): string => `closed after ${idleMs} ms without traffic`;

/** Judges a destination; returns the pinned address or the reason it is refused. */
export async function judge(
  rules: Rule[],
  resolver: Resolver,
  rawHost: string,
  port: number,
  viaProxy = false,
): Promise<Verdict> {
  const host = normalizeHost(rawHost);
  if (!host) return { host: rawHost, reason: 'not a hostname (IP literals are refused)' };
  if (!ALLOWED_PORTS.has(port))
    return { host, reason: `port ${port} is not allowed (only 80 and 443)` };
  if (!matchHost(host, rules))
    return { host, reason: `${host} is not on this container's allowlist` };
  // Through an upstream proxy, names are resolved there (often the only place that can).
  if (viaProxy) return { host, target: { address: host, port } };
  try {
    return { host, target: await resolver.resolve(host, port) };
  } catch (error) {
    if (error instanceof EgressDenied) return { host, reason: error.message };
    throw error;
  }
}

/** Ends a raw client socket with a short HTTP answer, then closes it. */
export function answerAndClose(socket: Duplex, status: string, text = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = text ? `berth egress: ${text}\n` : '';
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
