import { chmod, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { matchHost, normalizeHost, type Rule } from './allowlist.js';
import { EgressDenied, type Resolver } from './resolver.js';

export interface EgressLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface Decision {
  containerId: string;
  decision: 'allowed' | 'denied';
  host: string;
  port: number;
  reason?: string;
  bytesUp: number;
  bytesDown: number;
}

export interface EgressStats {
  allowed: number;
  denied: number;
  bytesUp: number;
  bytesDown: number;
  /** The most recent decisions, newest last. */
  recent: Decision[];
}

interface Attached {
  server: http.Server;
  rules: Rule[];
  stats: EgressStats;
  sockets: Set<Duplex>;
}

export const SANDBOX_EGRESS_DIR = '/run/berth-egress';
export const SANDBOX_PROXY_PORT = 3128;
const SOCKET = 'egress.sock';
const ALLOWED_PORTS = new Set([80, 443]);
const HOP_BY_HOP = new Set([
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

/** What a sandbox needs to use the proxy: its environment and the in-sandbox forwarder. */
export const sandboxProxyEnv = (): string[] => {
  const url = `http://127.0.0.1:${SANDBOX_PROXY_PORT}`;
  return [
    `HTTP_PROXY=${url}`,
    `HTTPS_PROXY=${url}`,
    `http_proxy=${url}`,
    `https_proxy=${url}`,
    'NO_PROXY=',
    'no_proxy=',
  ];
};
export const forwarderCommand = (): string[] => [
  'socat',
  `TCP-LISTEN:${SANDBOX_PROXY_PORT},bind=127.0.0.1,fork,reuseaddr`,
  `UNIX-CONNECT:${SANDBOX_EGRESS_DIR}/${SOCKET}`,
];

/**
 * One HTTP proxy per sandbox, each on its own Unix socket in a directory that is bind-mounted into
 * that sandbox: which socket a request arrives on says which sandbox sent it, so identity can't be
 * forged. It serves CONNECT (ports 443 and 80) and absolute-URI plain HTTP (port 80), judges the
 * destination host against that sandbox's allowlist, resolves the name itself, refuses
 * non-public addresses, and connects to the address it checked.
 */
export class EgressProxy {
  readonly #attached = new Map<string, Attached>();

  constructor(
    private readonly options: {
      runDir: string;
      resolver: Resolver;
      log?: EgressLogger;
      recent?: number;
    },
  ) {}

  /** The host directory bind-mounted into the sandbox at /run/berth-egress. */
  hostDir(containerId: string): string {
    if (!/^[a-z0-9_]{1,64}$/.test(containerId)) throw new Error(`bad container id ${containerId}`);
    return join(this.options.runDir, containerId);
  }

  /** Starts (or restarts, with new rules) the proxy of one sandbox. Idempotent. */
  async attach(containerId: string, rules: Rule[]): Promise<void> {
    const existing = this.#attached.get(containerId);
    if (existing) {
      existing.rules = rules;
      return;
    }
    const dir = this.hostDir(containerId);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const path = join(dir, SOCKET);
    await rm(path, { force: true }); // a stale socket from a previous process
    const entry: Attached = {
      server: http.createServer(),
      rules,
      stats: { allowed: 0, denied: 0, bytesUp: 0, bytesDown: 0, recent: [] },
      sockets: new Set(),
    };
    entry.server.on('connection', (s: net.Socket) => {
      entry.sockets.add(s);
      s.on('close', () => entry.sockets.delete(s));
    });
    entry.server.on(
      'connect',
      (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
        void this.#connect(containerId, entry, req, socket, head),
    );
    entry.server.on('request', (req, res) => void this.#http(containerId, entry, req, res));
    await new Promise<void>((resolve, reject) =>
      entry.server.once('error', reject).listen(path, resolve),
    );
    // The sandbox user (uid 1000) must be able to connect; nothing else reaches this directory.
    await chmod(path, 0o666);
    this.#attached.set(containerId, entry);
  }

  async detach(containerId: string): Promise<void> {
    await this.#stop(containerId);
    await rm(this.hostDir(containerId), { recursive: true, force: true });
  }

  /** Stops serving one sandbox; its directory stays (a restart re-creates the socket in it). */
  async #stop(containerId: string): Promise<void> {
    const entry = this.#attached.get(containerId);
    this.#attached.delete(containerId);
    if (!entry) return;
    for (const s of entry.sockets) s.destroy();
    await new Promise<void>((resolve) => entry.server.close(() => resolve()));
  }

  attachedIds(): string[] {
    return [...this.#attached.keys()];
  }

  stats(containerId: string): EgressStats | null {
    return this.#attached.get(containerId)?.stats ?? null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#attached.keys()].map((id) => this.#stop(id)));
  }

  #record(entry: Attached, d: Decision): void {
    if (d.decision === 'allowed') entry.stats.allowed += 1;
    else entry.stats.denied += 1;
    entry.stats.bytesUp += d.bytesUp;
    entry.stats.bytesDown += d.bytesDown;
    entry.stats.recent.push(d);
    if (entry.stats.recent.length > (this.options.recent ?? 100)) entry.stats.recent.shift();
    if (d.decision === 'allowed') this.options.log?.info({ egress: d }, 'egress allowed');
    else this.options.log?.warn({ egress: d }, 'egress denied');
  }

  /** Judges a destination; returns the pinned address or the reason it is refused. */
  async #judge(
    entry: Attached,
    rawHost: string,
    port: number,
  ): Promise<{ host: string; target?: { address: string; port: number }; reason?: string }> {
    const host = normalizeHost(rawHost);
    if (!host) return { host: rawHost, reason: 'not a hostname (IP literals are refused)' };
    if (!ALLOWED_PORTS.has(port))
      return { host, reason: `port ${port} is not allowed (only 80 and 443)` };
    if (!matchHost(host, entry.rules))
      return { host, reason: `${host} is not on this container's allowlist` };
    try {
      return { host, target: await this.options.resolver.resolve(host, port) };
    } catch (error) {
      if (error instanceof EgressDenied) return { host, reason: error.message };
      throw error;
    }
  }

  async #connect(
    containerId: string,
    entry: Attached,
    req: http.IncomingMessage,
    client: Duplex,
    head: Buffer,
  ): Promise<void> {
    const target = /^([^:@/\s]+):(\d{1,5})$/.exec(req.url ?? '');
    const host = target?.[1] ?? (req.url ?? '').slice(0, 255);
    const port = Number(target?.[2] ?? 0);
    const verdict = target
      ? await this.#judge(entry, host, port)
      : { host, reason: 'malformed CONNECT target' };
    if (!verdict.target) {
      this.#record(entry, {
        containerId,
        decision: 'denied',
        host: verdict.host,
        port,
        reason: verdict.reason!,
        bytesUp: 0,
        bytesDown: 0,
      });
      client.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nberth egress: ${verdict.reason}\n`,
      );
      return;
    }
    let up = head.length;
    let down = 0;
    const upstream = net.connect(verdict.target.port, verdict.target.address);
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      client.on('data', (c: Buffer) => (up += c.length));
      upstream.on('data', (c: Buffer) => (down += c.length));
      client.pipe(upstream).pipe(client);
    });
    let done = false;
    const finish = (failure?: string) => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
      this.#record(entry, {
        containerId,
        decision: 'allowed',
        host: verdict.host,
        port,
        ...(failure ? { reason: failure } : {}),
        bytesUp: up,
        bytesDown: down,
      });
    };
    upstream.once('error', (e) => {
      if (!upstream.readyState || upstream.connecting)
        client.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n');
      finish(`upstream: ${e.message}`);
    });
    upstream.once('close', () => finish());
    client.once('error', () => finish());
    client.once('close', () => finish());
  }

  async #http(
    containerId: string,
    entry: Attached,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const deny = (status: number, host: string, port: number, reason: string) => {
      this.#record(entry, {
        containerId,
        decision: 'denied',
        host,
        port,
        reason,
        bytesUp: 0,
        bytesDown: 0,
      });
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
    if (
      hostHeader &&
      normalizeHost(hostHeader.replace(/:\d+$/, '')) !== normalizeHost(url.hostname)
    ) {
      return deny(400, url.hostname, port, 'the Host header does not match the URL');
    }
    const verdict = await this.#judge(entry, url.hostname, port);
    if (!verdict.target) return deny(403, verdict.host, port, verdict.reason!);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    headers.host = url.host;
    let up = 0;
    let down = 0;
    req.on('data', (c: Buffer) => (up += c.length));
    const upstream = http.request({
      host: verdict.target.address,
      port: verdict.target.port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
    });
    upstream.on('response', (r) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(r.headers))
        if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
      res.writeHead(r.statusCode ?? 502, out);
      r.on('data', (c: Buffer) => (down += c.length));
      r.pipe(res);
      r.on('end', () =>
        this.#record(entry, {
          containerId,
          decision: 'allowed',
          host: verdict.host,
          port,
          bytesUp: up,
          bytesDown: down,
        }),
      );
    });
    upstream.on('error', (e) => {
      this.#record(entry, {
        containerId,
        decision: 'allowed',
        host: verdict.host,
        port,
        reason: `upstream: ${e.message}`,
        bytesUp: up,
        bytesDown: down,
      });
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end();
    });
    req.pipe(upstream);
  }
}
