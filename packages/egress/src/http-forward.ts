import http from 'node:http';
import type net from 'node:net';
import { normalizeHost } from './allowlist.js';
import { openUpstream } from './upstream.js';
import type { Exchange } from './exchange.js';

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export const endToEnd = (headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders => {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
};

/**
 * Serves one absolute-URI plain HTTP request: judges the URL's host, forwards to the pinned
 * address, streams the answer back. Either side going away, or `idleMs` without a byte, ends both.
 */
export async function httpForward(
  ex: Exchange,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  // Before the first await: a client that resets while the name resolves is an ordinary event.
  req.on('error', () => {});
  res.on('error', () => {});
  const deny = (status: number, host: string, port: number, reason: string) => {
    ex.record({ decision: 'denied', host, port, reason, bytesUp: 0, bytesDown: 0 });
    if (res.destroyed) return;
    res
      .writeHead(status, { 'content-type': 'text/plain', connection: 'close' })
      .end(`berth egress: ${reason}\n`);
  };
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    return deny(400, '', 0, 'a proxy request needs an absolute http:// URL');
  }
  const port = Number(url.port || 80);
  if (url.protocol !== 'http:')
    return deny(
      400,
      url.hostname,
      port,
      `${url.protocol} is not proxied as plain HTTP; use CONNECT`,
    );
  if (url.username || url.password)
    return deny(403, url.hostname, port, 'userinfo in the URL is refused');
  const hostHeader = req.headers.host;
  if (hostHeader && normalizeHost(hostHeader.replace(/:\d+$/, '')) !== normalizeHost(url.hostname))
    return deny(400, url.hostname, port, 'the Host header does not match the URL');
  const verdict = await ex.judge(url.hostname, port);
  if (!verdict.target) return deny(403, verdict.host, port, verdict.reason!);
  if (res.destroyed) {
    ex.record({
      decision: 'allowed',
      host: verdict.host,
      port,
      reason: 'the client went away before the request was sent',
      bytesUp: 0,
      bytesDown: 0,
    });
    return;
  }

  let up = 0;
  let down = 0;
  let done = false;
  const upstream = http.request({
    host: verdict.target.address,
    port: verdict.target.port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers: { ...endToEnd(req.headers), host: url.host },
    timeout: ex.idleMs,
    // A fresh stream per request, to the pinned address or through the upstream proxy, reading in
    // large blocks (the answer is what a fetch is waiting for).
    createConnection: (_opts: unknown, done: (err: Error | null, s?: net.Socket) => void) => {
      openUpstream(verdict.target!, verdict.host, ex.upstreamProxy, ex.idleMs, true).then(
        (s) => done(null, s),
        (error: Error) => done(error),
      );
      return undefined;
    },
  } as http.RequestOptions);
  const finish = (failure?: string, status = 502): void => {
    if (done) return;
    done = true;
    if (failure) {
      upstream.destroy();
      if (!res.headersSent && !res.destroyed)
        res
          .writeHead(status, { 'content-type': 'text/plain', connection: 'close' })
          .end(`berth egress: ${failure}\n`);
      else res.destroy();
    }
    ex.record({
      decision: 'allowed',
      host: verdict.host,
      port,
      ...(failure ? { reason: failure } : {}),
      bytesUp: up,
      bytesDown: down,
    });
  };
  const idle = () => finish(`closed after ${ex.idleMs} ms without traffic`, 504);
  // The client socket's timer (the server's `timeout`) runs on reads and writes. Heard here, node
  // leaves the socket to us: a 504 if nothing was answered yet, else the connection is cut.
  res.on('timeout', idle);
  upstream.on('timeout', idle);
  upstream.on('error', (e) => finish(`upstream: ${e.message}`));
  upstream.on('response', (r) => {
    r.on('error', (e) => finish(`upstream: ${e.message}`));
    r.on('close', () => {
      if (!r.complete) finish('upstream: the answer was cut short');
    });
    if (done) {
      r.destroy();
      return;
    }
    res.writeHead(r.statusCode ?? 502, endToEnd(r.headers));
    r.on('data', (c: Buffer) => (down += c.length));
    r.pipe(res);
  });
  res.on('finish', () => finish());
  res.on('close', () => finish(res.writableFinished ? undefined : 'the client went away'));
  req.on('data', (c: Buffer) => (up += c.length));
  req.pipe(upstream);
}
