import { chmod, chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import tls from 'node:tls';
import type net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Rule } from './allowlist.js';
import { connectTunnel } from './connect-tunnel.js';
import { answerAndClose, judge, type Exchange } from './exchange.js';
import { httpForward } from './http-forward.js';
import type { HeldSecret, Interception } from './intercept.js';
import { SandboxCa } from './sandbox-ca.js';
import type { UpstreamProxy } from './upstream.js';
import type { Resolver } from './resolver.js';
import {
  emptyStats,
  recordDecision,
  type Decision,
  type EgressLogger,
  type EgressStats,
} from './stats.js';

export type { Decision, EgressLogger, EgressStats } from './stats.js';

export interface EgressProxyOptions {
  runDir: string;
  resolver: Resolver;
  log?: EgressLogger;
  /** How many recent decisions each sandbox's stats keep; default 100. */
  recent?: number;
  /** Concurrent connections one sandbox may hold; default 64. */
  maxConnectionsPerSandbox?: number;
  /** Concurrent connections across all sandboxes; default 4096. */
  maxConnections?: number;
  /** A tunnel or HTTP exchange with no byte either way for this long is closed; default 60 s. */
  idleTimeoutMs?: number;
  /** A client that hasn't sent a whole request head by then is closed; default 10 s. */
  headersTimeoutMs?: number;
  /**
   * Owner of each socket file, made mode 0600: only the in-sandbox forwarder's uid can connect.
   * Unset: mode 0666, anyone who sees the directory can.
   */
  socketOwner?: { uid: number; gid: number };
  /** Called with every decision after it is counted (for metrics and the event log). */
  onDecision?: (decision: Decision) => void;
  /**
   * What the real upstream of an intercepted domain is verified against; default the system roots
   * (`tls.rootCertificates`). Tests add their own CA.
   */
  upstreamCa?: readonly string[];
  /**
   * A corporate proxy all upstream traffic goes through (CONNECT by name). The allowlist is still
   * Berth's; resolving names, and refusing internal addresses, is then that proxy's.
   */
  upstreamProxy?: UpstreamProxy;
}

/** A secret of one sandbox, for requests to one domain; `value` null when it could not be unsealed. */
export interface SandboxSecret {
  domain: string;
  placeholder: string;
  value: string | null;
}

interface Attached {
  server: http.Server;
  rules: Rule[];
  stats: EgressStats;
  sockets: Set<Duplex>;
  /** Secrets by domain; only these domains' HTTPS is intercepted. */
  secrets: Map<string, HeldSecret[]>;
  /** The sandbox's CA, made when it first has secrets; its key never leaves this process. */
  ca: SandboxCa | null;
  /** Its egress directory: the container's, or the warm-pool slot's its sandbox mounts. */
  dir: string;
}

export const SANDBOX_EGRESS_DIR = '/run/berth-egress';
export const SANDBOX_PROXY_PORT = 3128;
const SOCKET = 'egress.sock';
/** In the sandbox's egress directory: the system roots plus its CA, and its CA alone. */
const CA_BUNDLE = 'ca-bundle.pem';
const CA_CERT = 'ca.pem';

/** What a sandbox with secrets needs to trust its proxy's CA (curl, OpenSSL, Python, Node). */
export const sandboxCaEnv = (): string[] => {
  const bundle = `${SANDBOX_EGRESS_DIR}/${CA_BUNDLE}`;
  return [
    `SSL_CERT_FILE=${bundle}`,
    `REQUESTS_CA_BUNDLE=${bundle}`,
    `CURL_CA_BUNDLE=${bundle}`,
    `PIP_CERT=${bundle}`,
    `GIT_SSL_CAINFO=${bundle}`,
    `NODE_EXTRA_CA_CERTS=${SANDBOX_EGRESS_DIR}/${CA_CERT}`,
  ];
};

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

function bySecretDomain(secrets: SandboxSecret[]): Map<string, HeldSecret[]> {
  const map = new Map<string, HeldSecret[]>();
  for (const s of secrets)
    map.set(s.domain, [
      ...(map.get(s.domain) ?? []),
      { placeholder: s.placeholder, value: s.value },
    ]);
  return map;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`EgressProxy: ${name} must be a positive integer, not ${value}`);
  return value;
}

/**
 * One HTTP proxy per sandbox, each on its own Unix socket in a directory that is bind-mounted into
 * that sandbox: which socket a request arrives on says which sandbox sent it, so identity can't be
 * forged. It serves CONNECT (ports 443 and 80) and absolute-URI plain HTTP (port 80), judges the
 * destination host against that sandbox's allowlist, resolves the name itself, refuses
 * non-public addresses, and connects to the address it checked. A sandbox can't exhaust the
 * process that hosts it: connections are capped per sandbox and in all, silent ones are closed,
 * and no client behaviour turns into an unhandled error.
 */
export class EgressProxy {
  readonly #attached = new Map<string, Attached>();
  /** Attaches under way: a second attach (or a detach) of the same sandbox waits for the first. */
  readonly #starting = new Map<string, Promise<void>>();
  /** Connections accepted (not refused) across all sandboxes. */
  #open = 0;
  /** Over-cap connections, answered 429: node's parser may still hand us a request on them. */
  readonly #refused = new WeakSet<Duplex>();
  readonly #perSandbox: number;
  readonly #total: number;
  readonly #idleMs: number;
  readonly #headersMs: number;
  readonly #requestMs: number;

  constructor(private readonly options: EgressProxyOptions) {
    this.#perSandbox = positive('maxConnectionsPerSandbox', options.maxConnectionsPerSandbox, 64);
    this.#total = positive('maxConnections', options.maxConnections, 4096);
    this.#idleMs = positive('idleTimeoutMs', options.idleTimeoutMs, 60_000);
    this.#headersMs = positive('headersTimeoutMs', options.headersTimeoutMs, 10_000);
    this.#requestMs = Math.max(300_000, this.#headersMs);
  }

  /** The root of every sandbox's egress directory (where this proxy serves). */
  get runDir(): string {
    return this.options.runDir;
  }

  /** The host directory bind-mounted into the sandbox at /run/berth-egress. */
  hostDir(containerId: string): string {
    if (!/^[a-z0-9_]{1,64}$/.test(containerId)) throw new Error(`bad container id ${containerId}`);
    return join(this.options.runDir, containerId);
  }

  /**
   * Starts the proxy of one sandbox, or gives a running one new rules. Idempotent. With secrets,
   * the sandbox's CA exists and its certificate is in the egress directory before this returns.
   * `dirKey` names that directory when it isn't the container id's (a claimed warm-pool slot's);
   * stats and decisions stay keyed by the container id.
   */
  async attach(
    containerId: string,
    rules: Rule[],
    secrets: SandboxSecret[] = [],
    dirKey: string = containerId,
  ): Promise<void> {
    for (;;) {
      const pending = this.#starting.get(containerId);
      if (!pending) break;
      await pending.catch(() => {});
    }
    const existing = this.#attached.get(containerId);
    if (existing) {
      existing.rules = rules;
      existing.secrets = bySecretDomain(secrets);
      if (secrets.length > 0 && !existing.ca) await this.#makeCa(containerId, existing);
      return;
    }
    const start = this.#start(containerId, rules, secrets, this.hostDir(dirKey));
    this.#starting.set(containerId, start);
    try {
      await start;
    } finally {
      this.#starting.delete(containerId);
    }
  }

  /** A CA of the sandbox's own, and the bundle the sandbox trusts, written next to its socket. */
  async #makeCa(containerId: string, entry: Attached): Promise<void> {
    const ca = await SandboxCa.create(containerId);
    const dir = entry.dir;
    const roots = tls.rootCertificates.join('\n');
    // Each file ends in a newline, so a sandbox can append its own certificates with `cat`.
    await writeFile(join(dir, CA_CERT), `${ca.certPem.trim()}\n`, { mode: 0o644 });
    await writeFile(join(dir, CA_BUNDLE), `${roots}\n${ca.certPem.trim()}\n`, { mode: 0o644 });
    entry.ca = ca;
  }

  #interception(entry: Attached, host: string): Interception | undefined {
    const secrets = entry.secrets.get(host);
    const ca = entry.ca;
    if (!secrets || !ca) return undefined;
    return {
      context: () => ca.contextFor(host),
      secrets,
      upstreamCa: this.options.upstreamCa ?? tls.rootCertificates,
      counted: (n) => {
        entry.stats.substitutions[host] = (entry.stats.substitutions[host] ?? 0) + n;
      },
    };
  }

  async #start(
    containerId: string,
    rules: Rule[],
    secrets: SandboxSecret[],
    dir: string,
  ): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const path = join(dir, SOCKET);
    await rm(path, { force: true }); // a stale socket from a previous process
    const entry: Attached = {
      server: this.#server(),
      rules,
      stats: emptyStats(),
      sockets: new Set(),
      secrets: bySecretDomain(secrets),
      ca: null,
      dir,
    };
    for (const domain of entry.secrets.keys()) entry.stats.substitutions[domain] = 0;
    if (secrets.length > 0) await this.#makeCa(containerId, entry);
    this.#serve(containerId, entry);
    await new Promise<void>((resolve, reject) =>
      entry.server.once('error', reject).listen(path, resolve),
    );
    try {
      const owner = this.options.socketOwner;
      if (owner) {
        await chown(path, owner.uid, owner.gid);
        await chmod(path, 0o600);
      } else {
        await chmod(path, 0o666);
      }
    } catch (error) {
      await new Promise<void>((resolve) => entry.server.close(() => resolve()));
      throw error;
    }
    this.#attached.set(containerId, entry);
  }

  /** Stops serving a sandbox and removes its directory, and `dirKey`'s (default its id's). */
  async detach(containerId: string, dirKey: string = containerId): Promise<void> {
    await this.#starting.get(containerId)?.catch(() => {});
    const own = this.#attached.get(containerId)?.dir;
    await this.#stop(containerId);
    for (const dir of new Set([own, this.hostDir(dirKey)]))
      if (dir) await rm(dir, { recursive: true, force: true });
  }

  /** An empty egress directory, made before a warm-pool sandbox that mounts it is created. */
  async prepareDir(dirKey: string): Promise<void> {
    const dir = this.hostDir(dirKey);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
  }

  /** The names of the egress directories under `runDir`. */
  async dirKeys(): Promise<string[]> {
    const entries = await readdir(this.options.runDir, { withFileTypes: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw error;
      },
    );
    return entries
      .filter((e) => e.isDirectory() && /^[a-z0-9_]{1,64}$/.test(e.name))
      .map((e) => e.name);
  }

  attachedIds(): string[] {
    return [...this.#attached.keys()];
  }

  stats(containerId: string): EgressStats | null {
    return this.#attached.get(containerId)?.stats ?? null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#starting.values()].map((p) => p.catch(() => {})));
    await Promise.all([...this.#attached.keys()].map((id) => this.#stop(id)));
  }

  /** Stops serving one sandbox; its directory stays (a restart re-creates the socket in it). */
  async #stop(containerId: string): Promise<void> {
    await this.#starting.get(containerId)?.catch(() => {});
    const entry = this.#attached.get(containerId);
    this.#attached.delete(containerId);
    if (!entry) return;
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()));
    entry.server.closeAllConnections();
    for (const s of entry.sockets) s.destroy();
    await closed;
  }

  #server(): http.Server {
    const server = http.createServer({
      headersTimeout: this.#headersMs,
      // The whole request of a plain-HTTP forward (CONNECT tunnels leave the parser before this).
      requestTimeout: this.#requestMs,
      // How often node looks for connections past those deadlines.
      connectionsCheckingInterval: Math.max(10, Math.min(1_000, this.#headersMs / 4)),
    });
    // Armed on every client socket from its first byte; the HTTP forward listens for it.
    server.timeout = this.#idleMs;
    server.keepAliveTimeout = Math.min(5_000, this.#idleMs);
    return server;
  }

  #serve(containerId: string, entry: Attached): void {
    const record = (d: Omit<Decision, 'containerId'>) => {
      recordDecision(
        entry.stats,
        { containerId, ...d },
        this.options.recent ?? 100,
        this.options.log,
      );
      this.options.onDecision?.({ containerId, ...d });
    };
    const ex: Exchange = {
      judge: (host, port) =>
        judge(entry.rules, this.options.resolver, host, port, !!this.options.upstreamProxy),
      ...(this.options.upstreamProxy ? { upstreamProxy: this.options.upstreamProxy } : {}),
      record,
      idleMs: this.#idleMs,
      interception: (host) => this.#interception(entry, host),
    };
    // Before node's own listener, so a refused socket is known before it is parsed.
    entry.server.prependListener('connection', (s: net.Socket) => {
      // Every socket error ends in 'close', which is where it is handled; none may go unheard.
      s.on('error', () => {});
      const cap =
        entry.sockets.size >= this.#perSandbox
          ? `this sandbox's cap is ${this.#perSandbox}`
          : this.#open >= this.#total
            ? `the proxy's cap across sandboxes is ${this.#total}`
            : null;
      if (cap) {
        this.#refused.add(s);
        record({
          decision: 'denied',
          host: '',
          port: 0,
          reason: `too many connections (${cap})`,
          bytesUp: 0,
          bytesDown: 0,
        });
        answerAndClose(s, '429 Too Many Requests', `too many connections (${cap})`);
        return;
      }
      this.#open += 1;
      entry.sockets.add(s);
      s.on('close', () => {
        this.#open -= 1;
        entry.sockets.delete(s);
      });
    });
    entry.server.on('clientError', (err: NodeJS.ErrnoException, s: Duplex) => {
      if (this.#refused.has(s) || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        s.destroy();
        return;
      }
      const slow = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const reason = slow
        ? `no complete request in time (head ${this.#headersMs} ms, whole ${this.#requestMs} ms)`
        : `malformed request (${err.code ?? err.message})`;
      record({ decision: 'denied', host: '', port: 0, reason, bytesUp: 0, bytesDown: 0 });
      answerAndClose(s, slow ? '408 Request Timeout' : '400 Bad Request', reason);
    });
    entry.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.#refused.has(socket)) {
        socket.destroy();
        return;
      }
      connectTunnel(ex, req, socket, head).catch((error: unknown) => {
        this.#fault(containerId, error);
        answerAndClose(socket, '502 Bad Gateway', 'internal error');
      });
    });
    entry.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (this.#refused.has(req.socket)) {
        res.destroy();
        return;
      }
      httpForward(ex, req, res).catch((error: unknown) => {
        this.#fault(containerId, error);
        try {
          if (res.headersSent || res.destroyed) res.destroy();
          else res.writeHead(502, { connection: 'close' }).end('berth egress: internal error\n');
        } catch {
          res.destroy();
        }
      });
    });
  }

  /** A fault of the proxy itself: logged, and only that client's connection pays for it. */
  #fault(containerId: string, error: unknown): void {
    const log = this.options.log;
    (log?.error ?? log?.warn)?.call(log, { err: error, containerId }, 'egress proxy fault');
  }
}
