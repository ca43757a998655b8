import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { allowedDecision, answerAndClose, type Exchange } from './exchange.js';
import { interceptTunnel } from './intercept.js';
import { splice } from './splice.js';
import { openUpstream } from './upstream.js';

/**
 * Serves one CONNECT: judges the target, connects to the pinned address, and splices the two
 * sockets until both have closed or both fall silent for `idleMs`. Error listeners go on before the
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
    ex.record(
      allowedDecision(
        verdict.host,
        port,
        { up: 0, down: 0 },
        'the client went away before the tunnel opened',
      ),
    );
    client.destroy();
    return;
  }
  const plan = port === 443 ? ex.interception?.(verdict.host) : undefined;
  if (plan) return interceptTunnel(ex, verdict.host, port, verdict.target, client, head, plan);
  let upstream: net.Socket;
  try {
    // Connected (or refused) before anything is spliced: a refusal is still the client's 502.
    upstream = await openUpstream(verdict.target, verdict.host, ex.upstreamProxy, ex.idleMs, true);
  } catch (error) {
    const reason = ex.upstreamProxy
      ? `upstream proxy: ${(error as Error).message}`
      : `upstream: ${(error as Error).message}`;
    ex.record(allowedDecision(verdict.host, port, { up: 0, down: 0 }, reason));
    answerAndClose(client, '502 Bad Gateway', reason);
    return;
  }
  if (gone) {
    upstream.destroy();
    client.destroy();
    return;
  }
  client.off('error', onEarlyEnd).off('end', onEarlyEnd).off('close', onEarlyEnd);
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) upstream.write(head);
  splice(client, upstream, ex.idleMs, (counts, failure) =>
    ex.record(
      allowedDecision(
        verdict.host,
        port,
        { up: head.length + counts.up, down: counts.down },
        failure,
      ),
    ),
  );
}
