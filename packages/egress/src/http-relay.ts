import type http from 'node:http';
import { allowedDecision, idleReason, type Exchange } from './exchange.js';

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

/** The proxy's own short answer (a refusal, a timeout), after which the connection closes. */
export function answerText(res: http.ServerResponse, status: number, text: string): void {
  res
    .writeHead(status, { 'content-type': 'text/plain', connection: 'close' })
    .end(`berth egress: ${text}\n`);
}

/**
 * Relays one HTTP exchange once its upstream request is made: the client's body up, the answer
 * back with only its end-to-end headers. Either side going away, an upstream error, or `idleMs`
 * without a byte ends both (a 502 or 504 if nothing was answered yet); the decision is recorded
 * once, with the bytes of both bodies.
 */
export function relayExchange(
  ex: Exchange,
  host: string,
  port: number,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: http.ClientRequest,
): void {
  let up = 0;
  let down = 0;
  let done = false;
  const finish = (failure?: string, status = 502): void => {
    if (done) return;
    done = true;
    if (failure) {
      upstream.destroy();
      if (!res.headersSent && !res.destroyed) answerText(res, status, failure);
      else res.destroy();
    }
    ex.record(allowedDecision(host, port, { up, down }, failure));
  };
  const idle = () => finish(idleReason(ex.idleMs), 504);
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
    if (done) return void r.destroy();
    res.writeHead(r.statusCode ?? 502, endToEnd(r.headers));
    r.on('data', (c: Buffer) => (down += c.length));
    r.pipe(res);
  });
  res.on('finish', () => finish());
  res.on('close', () => finish(res.writableFinished ? undefined : 'the client went away'));
  req.on('data', (c: Buffer) => (up += c.length));
  req.pipe(upstream);
}
