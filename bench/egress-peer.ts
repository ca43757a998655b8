/**
 * The two ends of an egress bench, each in a process of its own, as they are in production (the
 * client in a sandbox, the upstream somewhere else): `upstream http|https [key cert]` serves the
 * body to every request; `client` fetches what its parent asks and answers with the time it took.
 * Measured in one process, the proxied fetch would also pay for the client's and the upstream's
 * work on the proxy's one thread, which the direct fetch would not.
 */
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

export const BODY_BYTES = 10 * 1024 * 1024;
export const PLACEHOLDER = 'berth_secret_' + '0'.repeat(48);

/** One fetch the client makes: plain HTTP (direct or by absolute URI), or HTTPS (direct or by CONNECT). */
export type Fetch =
  | { kind: 'http'; options: http.RequestOptions }
  | { kind: 'https'; host: string; port: number; servername: string; ca: string }
  | { kind: 'connect'; socketPath: string; host: string; ca: string };

export interface Fetched {
  ms: number;
  bytes: number;
}

function httpGet(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ ...options, agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** GET / over an open TLS stream; resolves with the body's length once the server closes. */
function fetchOver(socket: tls.TLSSocket, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    // The head, until its end is seen (it may come split across reads); then only counting.
    let head: Buffer | null = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      if (!head) return void (n += c.length);
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      n += head.length - end - 4;
      head = null;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(n));
    socket.write(
      `GET / HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`,
    );
  });
}

async function secured(options: tls.ConnectionOptions, host: string): Promise<number> {
  const s = tls.connect(options);
  await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
  return fetchOver(s, host);
}

/** CONNECT through a sandbox's socket, then TLS trusting `ca`. */
async function viaConnect(socketPath: string, host: string, ca: string): Promise<number> {
  const raw = net.connect(socketPath);
  raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    raw.once('data', (c: Buffer) =>
      String(c).startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(String(c))),
    );
    raw.once('error', reject);
  });
  return secured({ socket: raw, servername: host, ca }, host);
}

function fetchOnce(f: Fetch): Promise<number> {
  if (f.kind === 'http') return httpGet(f.options);
  if (f.kind === 'https')
    return secured(
      { host: f.host, port: f.port, servername: f.servername, ca: f.ca },
      f.servername,
    );
  return viaConnect(f.socketPath, f.host, f.ca);
}

function serveUpstream(scheme: string, keyPath?: string, certPath?: string): void {
  const body = Buffer.alloc(BODY_BYTES, 'x');
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => res.end(body);
  const server =
    scheme === 'https'
      ? https.createServer({ key: readFileSync(keyPath!), cert: readFileSync(certPath!) }, handler)
      : http.createServer(handler);
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
}

function serveClient(): void {
  process.on('message', (f: Fetch) => {
    const start = process.hrtime.bigint();
    fetchOnce(f).then(
      (bytes) => process.send!({ ms: Number(process.hrtime.bigint() - start) / 1e6, bytes }),
      (error: Error) => process.send!({ error: error.message }),
    );
  });
  process.send!('ready');
}

if (process.send) {
  // Gone with the parent, however it ends.
  process.on('disconnect', () => process.exit(0));
  const [role, ...rest] = process.argv.slice(2);
  if (role === 'upstream') serveUpstream(rest[0] ?? 'http', rest[1], rest[2]);
  else if (role === 'client') serveClient();
}
