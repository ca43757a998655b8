import net from 'node:net';
import { ReadPool } from './read-pool.js';

/** A corporate HTTP proxy that every outbound connection goes through, by CONNECT. */
export interface UpstreamProxy {
  host: string;
  port: number;
  /** `Proxy-Authorization` value, from the URL's userinfo (Basic). */
  authorization?: string;
}

/** Reads `http://[user:pass@]host:port`; throws with a message naming what is wrong. */
export function parseUpstreamProxy(text: string): UpstreamProxy {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`'${text.replace(/\/\/[^@/]*@/, '//…@')}' is not a URL like http://proxy:3128`);
  }
  if (url.protocol !== 'http:' || !url.hostname || url.pathname.replace(/\/$/, '') !== '')
    throw new Error('must be http://host:port (a plain HTTP proxy that supports CONNECT)');
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 80),
    ...(user || pass
      ? { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }
      : {}),
  };
}

const MAX_HEAD = 16 * 1024;
export const READ_BUFFER = 1024 * 1024;
/** Reads shorter than this (libuv's own read size) are copied out of a pool's buffer, not lent. */
export const COPY_BELOW = 64 * 1024;

/**
 * `onread` for a socket that reads up to 1 MB per read call, not libuv's 64 KB: a bulk download
 * takes a sixteenth of the reads and wake-ups. Each read goes through `push`, so the socket reads,
 * pauses (push says when) and ends as any other: copied out of the one buffer, or, with a pool,
 * read into a buffer of the pool's that its consumer gives back.
 */
function largeReads(socket: () => net.Socket, pool?: ReadPool): net.OnReadOpts {
  if (pool) {
    // A short read is copied out and its buffer reads again: lent, a 1 MB buffer holding a few
    // bytes would let an upstream that trickles (a tenant's own allowed server) make the proxy
    // hold a megabyte per packet for a client that doesn't read.
    let current: Buffer | null = null;
    return {
      buffer: () => (current ??= pool.take()),
      callback: (n: number, b: Uint8Array) => {
        if (n < COPY_BELOW) return socket().push(Buffer.from(b.subarray(0, n)));
        current = null; // lent with this read, until its consumer gives it back
        return socket().push(Buffer.from(b.buffer, b.byteOffset, n));
      },
    };
  }
  return {
    buffer: Buffer.allocUnsafe(READ_BUFFER),
    callback: (n: number, b: Uint8Array) => socket().push(Buffer.from(b.subarray(0, n))),
  };
}

/**
 * Opens a TCP stream to `host:port`: straight to the pinned address, or through the upstream
 * proxy by CONNECT with the name (the proxy resolves it). Resolves once bytes can flow; rejects on
 * an error, a refusal, or `timeoutMs` without an answer. The socket comes back with no listeners.
 * `bulk`: it reads in large blocks (for a socket only streams read; TLS wraps the plain kind),
 * into the pool's buffers if it is one.
 */
export function openUpstream(
  target: { address: string; port: number },
  host: string,
  via: UpstreamProxy | undefined,
  timeoutMs: number,
  bulk: boolean | ReadPool = false,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = net.connect({
      ...(via ? { host: via.host, port: via.port } : { host: target.address, port: target.port }),
      ...(bulk
        ? { onread: largeReads(() => socket, bulk instanceof ReadPool ? bulk : undefined) }
        : {}),
    });
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('closed before connecting')));
    const done = () => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.removeAllListeners('timeout');
      resolve(socket);
    };
    if (!via) {
      socket.once('connect', done);
      return;
    }
    socket.once('connect', () => {
      socket.write(
        `CONNECT ${host}:${target.port} HTTP/1.1\r\nHost: ${host}:${target.port}\r\n` +
          (via.authorization ? `Proxy-Authorization: ${via.authorization}\r\n` : '') +
          '\r\n',
      );
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) fail(new Error('the upstream proxy sent an oversized answer'));
        return;
      }
      socket.off('data', onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'));
      if (status?.[1] !== '200')
        return fail(new Error(`the upstream proxy answered ${status?.[1] ?? 'garbage'}`));
      const rest = head.subarray(end + 4);
      if (rest.length) socket.unshift(rest);
      done();
    };
    socket.on('data', onData);
  });
}
