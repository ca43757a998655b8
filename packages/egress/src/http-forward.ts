import type http from 'node:http';
import { normalizeHost } from './allowlist.js';
import { allowedDecision, type Exchange } from './exchange.js';
import { answerText } from './http-relay.js';
import { rawExchange } from './raw-exchange.js';

/**
 * Serves one absolute-URI plain HTTP request: judges the URL's host, forwards to the pinned
 * address, relays the answer back raw. Either side going away, or `idleMs` without a byte, ends both.
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
    if (!res.destroyed) answerText(res, status, reason);
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
    ex.record(
      allowedDecision(
        verdict.host,
        port,
        { up: 0, down: 0 },
        'the client went away before the request was sent',
      ),
    );
    return;
  }

  rawExchange(
    ex,
    {
      host: verdict.host,
      port,
      target: verdict.target,
      authority: url.host,
      path: `${url.pathname}${url.search}`,
    },
    req,
    res,
  );
}
