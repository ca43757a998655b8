import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { setSendBuffer } from '@berth/socket-buffer';
import { connectTunnel } from './connect-tunnel.js';
import { answerAndClose, type Exchange } from './exchange.js';
import { httpForward } from './http-forward.js';
import type { Attached, SandboxRegistry } from './registry.js';

export interface ServerLimits {
  /** A tunnel or HTTP exchange with no byte either way for this long is closed. */
  idleMs: number;
  /** A client that hasn't sent a whole request head by then is closed. */
  headersMs: number;
  /** The whole request of a plain-HTTP forward. */
  requestMs: number;
  /**
   * Send buffer asked for each admitted client socket (0: the kernel's default). The kernel's
   * default, about 208 KiB, made a 10 MB answer cost about fifty wake-ups of client and proxy.
   */
  sendBuffer: number;
}

/** The HTTP server of one sandbox, not yet listening: node's own deadlines set from `limits`. */
export function sandboxServer(limits: ServerLimits): http.Server {
  const server = http.createServer({
    headersTimeout: limits.headersMs,
    // The whole request of a plain-HTTP forward (CONNECT tunnels leave the parser before this).
    requestTimeout: limits.requestMs,
    // How often node looks for connections past those deadlines.
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, limits.headersMs / 4)),
  });
  // Armed on every client socket from its first byte; the HTTP forward listens for it.
  server.timeout = limits.idleMs;
  server.keepAliveTimeout = Math.min(5_000, limits.idleMs);
  return server;
}

/**
 * Wires one sandbox's server: each connection admitted by the registry's caps (else a 429),
 * malformed or slow requests answered and closed, CONNECT tunnelled, plain HTTP forwarded. A
 * fault of the proxy itself goes to `fault`, and only that client's connection pays for it.
 */
export function serveSandbox(
  entry: Attached,
  registry: SandboxRegistry,
  ex: Exchange,
  limits: ServerLimits,
  fault: (error: unknown) => void,
): void {
  const denied = (reason: string) =>
    ex.record({ decision: 'denied', host: '', port: 0, reason, bytesUp: 0, bytesDown: 0 });
  // Before node's own listener, so a refused socket is known before it is parsed.
  entry.server.prependListener('connection', (s: net.Socket) => {
    // Every socket error ends in 'close', which is where it is handled; none may go unheard.
    s.on('error', () => {});
    const cap = registry.admit(entry, s);
    if (!cap) return void setSendBuffer(s, limits.sendBuffer);
    denied(`too many connections (${cap})`);
    answerAndClose(s, '429 Too Many Requests', `too many connections (${cap})`);
  });
  entry.server.on('clientError', (err: NodeJS.ErrnoException, s: Duplex) => {
    if (registry.refused(s) || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      s.destroy();
      return;
    }
    const slow = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const reason = slow
      ? `no complete request in time (head ${limits.headersMs} ms, whole ${limits.requestMs} ms)`
      : `malformed request (${err.code ?? err.message})`;
    denied(reason);
    answerAndClose(s, slow ? '408 Request Timeout' : '400 Bad Request', reason);
  });
  entry.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (registry.refused(socket)) {
      socket.destroy();
      return;
    }
    connectTunnel(ex, req, socket, head).catch((error: unknown) => {
      fault(error);
      answerAndClose(socket, '502 Bad Gateway', 'internal error');
    });
  });
  entry.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (registry.refused(req.socket)) {
      res.destroy();
      return;
    }
    httpForward(ex, req, res).catch((error: unknown) => {
      fault(error);
      try {
        if (res.headersSent || res.destroyed) res.destroy();
        else res.writeHead(502, { connection: 'close' }).end('berth egress: internal error\n');
      } catch {
        res.destroy();
      }
    });
  });
}
