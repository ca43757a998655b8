import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { answerAndClose, type Exchange } from './exchange.js';
import { interceptTunnel } from './intercept.js';
import { openUpstream } from './upstream.js';

/**
 * Serves one CONNECT: judges the target, connects to the pinned address, and splices the two
 * sockets until either closes or both fall silent for `idleMs`. Error listeners go on before the
 * first await, so a client that resets while the name resolves can't raise an unhandled error.
 */
export async function connectTunnel(
  ex: Exchange,
  req: http.IncomingMessage,
  client: Duplex,
  head: Buffer,
): Promise<void> {
  let gone = false;
  const onEarlyEnd = () => {
    gone = true;
  };
  client.on('error', onEarlyEnd);
  client.on('end', onEarlyEnd); // the server half-opens: a client's EOF alone doesn't close
  client.on('close', onEarlyEnd);
  const target = /^([^:@/\s]+):(\d{1,5})$/.exec(req.url ?? '');
  const host = target?.[1] ?? (req.url ?? '').slice(0, 255);
  const port = Number(target?.[2] ?? 0);
  const verdict = target
    ? await ex.judge(host, port)
    : { host, reason: 'malformed CONNECT target' };
  if (!verdict.target) {
    ex.record({
      decision: 'denied',
      host: verdict.host,
      port,
      reason: verdict.reason!,
      bytesUp: 0,
      bytesDown: 0,
    });
    answerAndClose(client, '403 Forbidden', verdict.reason);
    return;
  }
  if (gone) {
    ex.record({
      decision: 'allowed',
      host: verdict.host,
      port,
      reason: 'the client went away before the tunnel opened',
      bytesUp: 0,
      bytesDown: 0,
    });
    client.destroy();
    return;
  }
  const plan = port === 443 ? ex.interception?.(verdict.host) : undefined;
  if (plan) return interceptTunnel(ex, verdict.host, port, verdict.target, client, head, plan);
  let up = head.length;
  let down = 0;
  let connected = false;
  let done = false;
  let upstream: net.Socket;
  if (ex.upstreamProxy) {
    // Through the operator's proxy: connected (or refused) before anything is spliced.
    try {
      upstream = await openUpstream(verdict.target, verdict.host, ex.upstreamProxy, ex.idleMs);
    } catch (error) {
      const reason = `upstream proxy: ${(error as Error).message}`;
      ex.record({
        decision: 'allowed',
        host: verdict.host,
        port,
        reason,
        bytesUp: 0,
        bytesDown: 0,
      });
      answerAndClose(client, '502 Bad Gateway', reason);
      return;
    }
    if (gone) {
      upstream.destroy();
      client.destroy();
      return;
    }
    upstream.setTimeout(ex.idleMs);
  } else {
    upstream = net.connect({
      host: verdict.target.address,
      port: verdict.target.port,
      timeout: ex.idleMs,
    });
  }
  const finish = (failure?: string) => {
    if (done) return;
    done = true;
    upstream.destroy();
    if (!connected && failure) answerAndClose(client, '502 Bad Gateway', failure);
    else client.destroy();
    ex.record({
      decision: 'allowed',
      host: verdict.host,
      port,
      ...(failure ? { reason: failure } : {}),
      bytesUp: up,
      bytesDown: down,
    });
  };
  // Silent both ways: a write to one socket is a read from the other, so either timer says it.
  const idle = () => finish(`closed after ${ex.idleMs} ms without traffic`);
  if (client instanceof net.Socket) client.setTimeout(ex.idleMs);
  client.on('timeout', idle);
  upstream.on('timeout', idle);
  const onConnect = () => {
    connected = true;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    client.on('data', (c: Buffer) => (up += c.length));
    upstream.on('data', (c: Buffer) => (down += c.length));
    client.pipe(upstream).pipe(client);
  };
  if (ex.upstreamProxy) onConnect();
  else upstream.once('connect', onConnect);
  upstream.on('error', (e) => finish(`upstream: ${e.message}`));
  upstream.on('close', () => finish(connected ? undefined : 'upstream closed before connecting'));
  client.on('error', (e) => finish(`client: ${e.message}`));
  client.on('close', () => finish());
}
