import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import tls from 'node:tls';
import { DEFAULT_SEND_BUFFER } from '@berth/socket-buffer';
import { join } from 'node:path';
import type { Rule } from './allowlist.js';
import { judge, type Exchange } from './exchange.js';
import type { HeldSecret, Interception } from './intercept.js';
import { SandboxRegistry, attachedEntry, type Attached } from './registry.js';
import { SandboxCa } from './sandbox-ca.js';
import { SOCKET, writeCaFiles } from './sandbox-env.js';
import { sandboxServer, serveSandbox, type ServerLimits } from './sandbox-server.js';
import type { UpstreamProxy } from './upstream.js';
import type { Resolver } from './resolver.js';
import { recordDecision, type Decision, type EgressLogger, type EgressStats } from './stats.js';

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
  /**
   * Send buffer asked of the kernel for each admitted sandbox connection, in bytes; default
   * DEFAULT_SEND_BUFFER (2 MiB), 0 keeps the kernel's default (`net.core.wmem_default`).
   */
  sendBuffer?: number;
}

/** A secret of one sandbox, for requests to one domain; `value` null when it could not be unsealed. */
export interface SandboxSecret {
  domain: string;
  placeholder: string;
  value: string | null;
}

function bySecretDomain(secrets: SandboxSecret[]): Map<string, HeldSecret[]> {
  const map = new Map<string, HeldSecret[]>();
  for (const s of secrets)
    map.set(s.domain, [
      ...(map.get(s.domain) ?? []),
      { placeholder: s.placeholder, value: s.value },
    ]);
  return map;
}

function positive(name: string, value: number | undefined, fallback: number, least = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < least)
    throw new Error(
      `EgressProxy: ${name} must be ${least ? 'a positive' : 'a non-negative'} integer, not ${value}`,
    );
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
  readonly #registry: SandboxRegistry;
  readonly #limits: ServerLimits;

  constructor(private readonly options: EgressProxyOptions) {
    this.#registry = new SandboxRegistry(
      positive('maxConnectionsPerSandbox', options.maxConnectionsPerSandbox, 64),
      positive('maxConnections', options.maxConnections, 4096),
    );
    const headersMs = positive('headersTimeoutMs', options.headersTimeoutMs, 10_000);
    this.#limits = {
      idleMs: positive('idleTimeoutMs', options.idleTimeoutMs, 60_000),
      headersMs,
      requestMs: Math.max(300_000, headersMs),
      sendBuffer: positive('sendBuffer', options.sendBuffer, DEFAULT_SEND_BUFFER, 0),
    };
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
    await this.#registry.attach(
      containerId,
      async (existing) => {
        existing.rules = rules;
        existing.secrets = bySecretDomain(secrets);
        if (secrets.length > 0 && !existing.ca) await this.#makeCa(containerId, existing);
      },
      () => this.#start(containerId, rules, secrets, this.hostDir(dirKey)),
    );
  }

  /** A CA of the sandbox's own, and the bundle the sandbox trusts, written next to its socket. */
  async #makeCa(containerId: string, entry: Attached): Promise<void> {
    const ca = await SandboxCa.create(containerId);
    await writeCaFiles(entry.dir, ca.certPem);
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
  ): Promise<Attached> {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const path = join(dir, SOCKET);
    await rm(path, { force: true }); // a stale socket from a previous process
    const entry = attachedEntry(sandboxServer(this.#limits), rules, dir, bySecretDomain(secrets));
    for (const domain of entry.secrets.keys()) entry.stats.substitutions[domain] = 0;
    if (secrets.length > 0) await this.#makeCa(containerId, entry);
    serveSandbox(entry, this.#registry, this.#exchange(containerId, entry), this.#limits, (error) =>
      this.#fault(containerId, error),
    );
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
    return entry;
  }

  /** What the tunnels and forwards of one sandbox judge by and record into. */
  #exchange(containerId: string, entry: Attached): Exchange {
    const { resolver, upstreamProxy, log, onDecision } = this.options;
    return {
      judge: (host, port) => judge(entry.rules, resolver, host, port, !!upstreamProxy),
      ...(upstreamProxy ? { upstreamProxy } : {}),
      record: (d) => {
        const decision: Decision = { containerId, ...d };
        recordDecision(entry.stats, decision, this.options.recent ?? 100, log);
        onDecision?.(decision);
      },
      idleMs: this.#limits.idleMs,
      interception: (host) => this.#interception(entry, host),
    };
  }

  /** Stops serving a sandbox and removes its directory, and `dirKey`'s (default its id's). */
  async detach(containerId: string, dirKey: string = containerId): Promise<void> {
    const stopped = await this.#registry.stop(containerId);
    for (const dir of new Set([stopped?.dir, this.hostDir(dirKey)]))
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
    return this.#registry.ids();
  }

  stats(containerId: string): EgressStats | null {
    return this.#registry.get(containerId)?.stats ?? null;
  }

  /** Stops serving every sandbox; their directories stay (a restart re-creates the sockets). */
  async close(): Promise<void> {
    await this.#registry.stopAll();
  }

  /** A fault of the proxy itself: logged, and only that client's connection pays for it. */
  #fault(containerId: string, error: unknown): void {
    const log = this.options.log;
    (log?.error ?? log?.warn)?.call(log, { err: error, containerId }, 'egress proxy fault');
  }
}
