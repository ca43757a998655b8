import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { normalizeHost } from './allowlist.js';
import { answerAndClose, type Exchange } from './exchange.js';
import { HOP_BY_HOP, answerText, relayExchange } from './http-relay.js';
import { openUpstream } from './upstream.js';

/** A secret of one domain as the proxy holds it: `value` null when it could not be unsealed. */
export interface HeldSecret {
  placeholder: string;
  value: string | null;
}

/** What intercepting one domain's HTTPS needs, from the proxy that serves its sandbox. */
export interface Interception {
  /** The TLS context presenting a leaf for the domain, signed by the sandbox's own CA. */
  context(): Promise<tls.SecureContext>;
  secrets: readonly HeldSecret[];
  /** Certificates the real upstream is verified against (the system roots; a test CA in tests). */
  upstreamCa: readonly string[];
  /** Counts substitutions made into requests to this domain (never what was substituted). */
  counted(substitutions: number): void;
}

/**
 * Serves one CONNECT to a domain that has secrets: answers 200, terminates TLS with a leaf for
 * exactly the CONNECT host (a ClientHello naming another host is cut off after the handshake),
 * parses HTTP/1.1 requests (pipelined or kept alive, each judged on its own: origin-form, Host
 * naming the CONNECT host), replaces the domain's placeholders in request header values, and
 * forwards each request over a fresh TLS connection to the pinned address, verified against
 * `upstreamCa` for the domain's name. Bodies and URLs are never rewritten, answers never
 * rewritten back, redirects never followed: the next request is judged by its own host.
 */
export async function interceptTunnel(
  ex: Exchange,
  host: string,
  port: number,
  target: { address: string; port: number },
  client: Duplex,
  head: Buffer,
  plan: Interception,
): Promise<void> {
  const denied = (reason: string) =>
    ex.record({ decision: 'denied', host, port, reason, bytesUp: 0, bytesDown: 0 });
  if (plan.secrets.some((s) => s.value === null)) {
    denied(`the secrets of ${host} can't be decrypted on this server (BERTH_SECRETS_KEY)`);
    answerAndClose(client, '403 Forbidden', `the secrets of ${host} are not available`);
    return;
  }
  const context = await plan.context();
  if (client.destroyed || !client.writable) {
    client.destroy();
    return;
  }
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) client.unshift(head);
  const secure = new tls.TLSSocket(client as net.Socket, {
    isServer: true,
    secureContext: context,
    ALPNProtocols: ['http/1.1'],
  });
  let handshaken = false;
  secure.on('error', (e) => {
    if (!handshaken) denied(`TLS with the sandbox failed: ${e.message}`);
    secure.destroy();
  });
  secure.on('close', () => client.destroy());
  secure.setTimeout(ex.idleMs, () => secure.destroy());
  secure.once('secure', () => {
    handshaken = true;
    const sni = secure.servername;
    if (sni && normalizeHost(sni) !== host) {
      denied(`TLS names ${String(sni).slice(0, 255)}, not the CONNECT target ${host}`);
      secure.destroy();
      return;
    }
    const server = http.createServer((req, res) => forward(ex, host, port, target, plan, req, res));
    server.timeout = ex.idleMs;
    server.on('clientError', (err: NodeJS.ErrnoException, s: Duplex) => {
      // Bytes after a request that closes the connection: that request is answered, then the end.
      if (err.code === 'HPE_CLOSED_CONNECTION') return;
      denied('malformed request inside the intercepted tunnel');
      answerAndClose(s, '400 Bad Request', 'malformed request');
    });
    server.emit('connection', secure);
  });
}

function forward(
  ex: Exchange,
  host: string,
  port: number,
  target: { address: string; port: number },
  plan: Interception,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  req.on('error', () => {});
  res.on('error', () => {});
  const deny = (status: number, reason: string) => {
    ex.record({ decision: 'denied', host, port, reason, bytesUp: 0, bytesDown: 0 });
    if (!res.destroyed) answerText(res, status, reason);
  };
  if (!(req.url ?? '').startsWith('/'))
    return deny(400, 'requests in an intercepted tunnel must be origin-form (/path)');
  const hostHeader = (req.headers.host ?? '').replace(/:443$/, '');
  if (normalizeHost(hostHeader) !== host)
    return deny(421, `the Host header must name ${host}, the host this tunnel was opened to`);

  // Headers named by `Connection` are hop-by-hop too (RFC 9110 §7.6.1): dropped, never forwarded.
  const named = new Set(
    String(req.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((t) => t.trim()),
  );
  const headers: Record<string, string[]> = {};
  let substitutions = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name) || name === 'host') continue;
    let value = raw[i + 1]!;
    for (const s of plan.secrets) {
      const parts = value.split(s.placeholder);
      if (parts.length < 2) continue;
      substitutions += parts.length - 1;
      value = parts.join(s.value!);
    }
    (headers[name] ??= []).push(value);
  }

  let upstream: http.ClientRequest;
  try {
    upstream = https.request({
      host: target.address,
      port: target.port,
      servername: host,
      ca: [...plan.upstreamCa],
      method: req.method,
      path: req.url,
      headers: { ...headers, host },
      timeout: ex.idleMs,
      // TLS to the real upstream over a stream opened directly or through the upstream proxy;
      // verified against `upstreamCa` for the domain's own name.
      createConnection: (_opts: unknown, done: (err: Error | null, s?: Duplex) => void) => {
        openUpstream(target, host, ex.upstreamProxy, ex.idleMs).then(
          (raw) => {
            const secure = tls.connect({
              socket: raw,
              servername: host,
              ca: [...plan.upstreamCa],
              ALPNProtocols: ['http/1.1'],
            });
            raw.on('error', () => secure.destroy());
            secure.on('close', () => raw.destroy());
            done(null, secure);
          },
          (error: Error) => done(error),
        );
        return undefined;
      },
    } as https.RequestOptions);
  } catch {
    // e.g. a secret with a character no header may carry; the message would name only the header.
    return deny(400, 'a request header (or the secret put into it) is not a valid header value');
  }
  plan.counted(substitutions);

  relayExchange(ex, host, port, req, res, upstream);
}
