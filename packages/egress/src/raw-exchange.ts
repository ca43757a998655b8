import type http from 'node:http';
import type net from 'node:net';
import { allowedDecision, idleReason, type Exchange } from './exchange.js';
import { answerText } from './http-relay.js';
import { MAX_RESPONSE_HEAD, requestHead, responseHead, type BodyEnd } from './raw-head.js';
import { ReadPool } from './read-pool.js';
import { openUpstream, READ_BUFFER } from './upstream.js';

// Shared by every plain HTTP exchange of the process; each read is written on once, then given back.
const reads = new ReadPool(READ_BUFFER, 8);

/** What one judged plain HTTP forward sends: to the pinned `target`, for `host` and `path`. */
export interface RawRequest {
  host: string;
  port: number;
  target: { address: string; port: number };
  /** The URL's host and port, for the `Host` header. */
  authority: string;
  /** Origin-form: path and query. */
  path: string;
}

/**
 * Relays one judged plain HTTP exchange without node's HTTP client: a fresh upstream connection
 * (to the pinned address, or through the upstream proxy), the request head written here with the
 * client's end-to-end fields and the body sent on (re-chunked if it came chunked), the answer's
 * head read and rewritten, then its body relayed as raw bytes, in the upstream's framing, on the
 * client's socket, which closes after it. A body with a length ends at that length; any other
 * ends when the upstream closes. An upstream error or garbage before an answer is a 502, `idleMs`
 * with no byte either way a 504 (a cut once answered), a short body a cut; the client going away
 * ends the upstream. The decision is recorded once, with the request body's bytes and the
 * answer body's bytes as relayed (a chunked body's framing included).
 */
export function rawExchange(
  ex: Exchange,
  rq: RawRequest,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  // A request pipelined behind another waits for its turn on the socket.
  if (res.socket) relay(ex, rq, req, res, res.socket);
  else res.once('socket', (s: net.Socket) => relay(ex, rq, req, res, s));
}

function relay(
  ex: Exchange,
  rq: RawRequest,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  client: net.Socket,
): void {
  let up = 0;
  let down = 0;
  let done = false;
  let upstream: net.Socket | undefined;
  /** Set once the answer's head went to the client: from then on a failure is a cut. */
  let body: BodyEnd | undefined;
  let remaining = 0;
  /** Reads written to the client and not flushed yet; the upstream pauses at two. */
  let unwritten = 0;
  let paused = false;

  const finish = (failure?: string, status = 502): void => {
    if (done) return;
    done = true;
    upstream?.destroy();
    if (!failure) client.end(() => client.destroy());
    else if (!body && !client.destroyed) answerText(res, status, failure);
    else client.destroy();
    ex.record(allowedDecision(rq.host, rq.port, { up, down }, failure));
  };
  const idle = () => finish(idleReason(ex.idleMs), 504);
  // The client socket's timer (the server's `timeout`) runs on its reads and writes.
  res.on('timeout', idle);
  client.on('close', () => finish('the client went away'));
  if (client.destroyed) return finish('the client went away');

  const toClient = (chunk: Buffer): void => {
    let c = chunk;
    const last = body!.kind === 'length' && c.length >= remaining;
    if (body!.kind === 'length') {
      if (last) c = c.subarray(0, remaining);
      remaining -= c.length;
    }
    down += c.length;
    if (c.length) {
      unwritten += 1;
      client.write(c, (e) => {
        unwritten -= 1;
        if (!e) reads.give(chunk);
        if (paused && unwritten < 2 && client.writableLength < 2 * READ_BUFFER) {
          paused = false;
          upstream?.resume();
        }
      });
    }
    if (last) return finish();
    // The next read goes on while the last drains (fewer stops and starts than a pipe's 16 KB
    // mark); no more than two reads, and 2 MB, are ever held for a slow client.
    if (!paused && (unwritten >= 2 || client.writableLength >= 2 * READ_BUFFER)) {
      paused = true;
      upstream!.pause();
    }
  };

  let head: Buffer = Buffer.alloc(0);
  const onHead = (chunk: Buffer): void => {
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    for (;;) {
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD)
          finish(`upstream: the answer's head is over ${MAX_RESPONSE_HEAD} bytes`);
        return;
      }
      if (end > MAX_RESPONSE_HEAD)
        return finish(`upstream: the answer's head is over ${MAX_RESPONSE_HEAD} bytes`);
      let parsed;
      try {
        parsed = responseHead(head.subarray(0, end).toString('latin1'), req.method ?? 'GET');
      } catch (error) {
        return finish(`upstream: ${(error as Error).message}`);
      }
      head = head.subarray(end + 4);
      // An interim answer (100 Continue, 103 Early Hints) is not relayed; the final one follows.
      if (parsed.status < 200) continue;
      upstream!.off('data', onHead).on('data', toClient);
      body = parsed.body;
      client.write(parsed.text, 'latin1');
      if (body.kind === 'none') return finish();
      if (body.kind === 'length') remaining = body.length;
      if (body.kind === 'length' && remaining === 0) return finish();
      if (head.length) toClient(head);
      return;
    }
  };

  openUpstream(rq.target, rq.host, ex.upstreamProxy, ex.idleMs, reads).then(
    (s) => {
      if (done) return void s.destroy();
      upstream = s;
      s.setTimeout(ex.idleMs, idle);
      s.on('error', (e) => finish(`upstream: ${e.message}`));
      s.on('close', () => {
        if (!body) finish('upstream: closed before answering');
        else if (body.kind === 'length') finish('upstream: the answer was cut short');
        else finish();
      });
      s.on('data', onHead);
      sendRequest(rq, req, s, (n) => (up += n));
    },
    (error: Error) =>
      finish(`${ex.upstreamProxy ? 'upstream proxy' : 'upstream'}: ${error.message}`),
  );
}

/** The request head, then the client's body as node's parser decoded it, re-chunked if it came so. */
function sendRequest(
  rq: RawRequest,
  req: http.IncomingMessage,
  upstream: net.Socket,
  counted: (n: number) => void,
): void {
  const chunked = req.headers['transfer-encoding'] !== undefined;
  upstream.write(
    requestHead(
      req.method ?? 'GET',
      rq.path,
      rq.authority,
      req.rawHeaders,
      chunked,
      req.httpVersion === '1.0',
    ),
    'latin1',
  );
  req.on('data', (c: Buffer) => {
    if (c.length === 0) return; // a zero-size chunk would end a chunked body
    counted(c.length);
    if (chunked) upstream.write(`${c.length.toString(16)}\r\n`);
    if (chunked) upstream.write(c);
    if (!upstream.write(chunked ? '\r\n' : c)) {
      req.pause();
      upstream.once('drain', () => req.resume());
    }
  });
  if (chunked) req.on('end', () => upstream.write('0\r\n\r\n'));
}
