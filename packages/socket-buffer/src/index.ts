/**
 * A stream socket's kernel send buffer, asked for per socket.
 *
 * Bulk bytes leave the service over Unix sockets (the egress proxy to a sandbox, an upload to the
 * file helper), whose send buffer is `net.core.wmem_default` (208 KiB on most hosts): a 10 MB answer
 * then takes some fifty fill-and-drain round trips between two processes on a small host, and the
 * proxy's hop cost 1.4x a direct fetch. Node sets no SO_SNDBUF on a stream socket, so this asks
 * the kernel through the `sockopt` addon (a setsockopt(2) call, compiled at install). Only the
 * sockets handed here get the larger buffer; the host's default is left alone.
 *
 * Without the addon (it failed to build, or the platform isn't Linux) every call is a no-op and
 * says so: sockets keep the kernel's default, slower, never broken.
 */
import { createRequire } from 'node:module';
import { createServer, type Server, type Socket } from 'node:net';

/** What the service asks for by default: 2 MiB (the kernel books twice that, overhead included). */
export const DEFAULT_SEND_BUFFER = 2 * 1024 * 1024;

// Linux's values (asm-generic/socket.h); the addon is only loaded on Linux.
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;
const EPERM = /\(1\)$/;
/** The largest value setsockopt takes: the kernel doubles it into an int. */
const MAX_ASK = 0x3fffffff;

interface Sockopt {
  setsockopt(socket: Socket | Server, level: number, name: number, value: number): void;
  getsockopt(socket: Socket | Server, level: number, name: number): number;
}

let addon: Sockopt | null | undefined;
let unavailable = '';
/** SO_SNDBUFFORCE (past net.core.wmem_max) until the kernel says EPERM: no CAP_NET_ADMIN. */
let force = true;

function sockopt(): Sockopt | null {
  if (addon !== undefined) return addon;
  if (process.platform !== 'linux') {
    unavailable = `not on Linux (${process.platform})`;
    return (addon = null);
  }
  try {
    addon = createRequire(import.meta.url)('sockopt') as Sockopt;
  } catch (error) {
    unavailable = `the sockopt addon did not load (${(error as Error).message.split('\n')[0]})`;
    addon = null;
  }
  return addon;
}

/**
 * Asks for `bytes` of send buffer on a connected (or listening) socket. Past
 * `net.core.wmem_max` only with CAP_NET_ADMIN (a root service); otherwise the kernel caps it there.
 * False when nothing was set: `bytes` is 0, no addon, or the socket has no descriptor (closed).
 * Never throws.
 */
export function setSendBuffer(socket: Socket | Server, bytes: number): boolean {
  if (!(bytes > 0)) return false;
  const so = sockopt();
  if (!so) return false;
  const value = Math.min(bytes, MAX_ASK);
  if (force) {
    try {
      so.setsockopt(socket, SOL_SOCKET, SO_SNDBUFFORCE, value);
      return true;
    } catch (error) {
      if (!EPERM.test((error as Error).message)) return false;
      force = false;
    }
  }
  try {
    so.setsockopt(socket, SOL_SOCKET, SO_SNDBUF, value);
    return true;
  } catch {
    return false;
  }
}

/** The kernel's send buffer of `socket` (its bookkeeping size: twice what was asked), or null. */
export function sendBufferOf(socket: Socket | Server): number | null {
  const so = sockopt();
  if (!so) return null;
  try {
    return so.getsockopt(socket, SOL_SOCKET, SO_SNDBUF);
  } catch {
    return null;
  }
}

export interface SendBufferProbe {
  /** Bytes asked for. */
  asked: number;
  /** What the kernel books for a socket that asks: twice the granted size; null if not set. */
  effective: number | null;
  /** Why nothing could be asked (no addon, not Linux), or why less was granted. */
  note?: string;
}

/**
 * Asks once on a throwaway socket (listening on loopback, closed at once) what sockets that ask
 * for `bytes` get: for the service's start-up log, so an operator sees a capped buffer.
 */
export async function probeSendBuffer(bytes: number): Promise<SendBufferProbe> {
  if (!(bytes > 0)) return { asked: 0, effective: null, note: 'off: the kernel default is kept' };
  if (!sockopt()) return { asked: bytes, effective: null, note: unavailable };
  const server = createServer();
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(0, '127.0.0.1', resolve),
  );
  try {
    const set = setSendBuffer(server, bytes);
    const effective = set ? sendBufferOf(server) : null;
    if (effective === null) return { asked: bytes, effective, note: 'setsockopt failed' };
    if (effective < 2 * Math.min(bytes, MAX_ASK))
      return {
        asked: bytes,
        effective,
        note: 'capped by net.core.wmem_max (raise it, or run with CAP_NET_ADMIN)',
      };
    return { asked: bytes, effective };
  } finally {
    server.close();
  }
}
