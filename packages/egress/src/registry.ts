import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Rule } from './allowlist.js';
import type { HeldSecret } from './intercept.js';
import type { SandboxCa } from './sandbox-ca.js';
import { emptyStats, type EgressStats } from './stats.js';

/** One attached sandbox: its server, what it may reach, what it has done. */
export interface Attached {
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

/** A sandbox's entry before it serves: no connection held, no decision counted, no CA yet. */
export function attachedEntry(
  server: http.Server,
  rules: Rule[],
  dir: string,
  secrets: Map<string, HeldSecret[]> = new Map(),
): Attached {
  return { server, rules, stats: emptyStats(), sockets: new Set(), secrets, ca: null, dir };
}

/**
 * The attached sandboxes by id, and the connections they hold: at most `perSandbox` for one and
 * `total` across all. Attaches of one id run one at a time, so two never race to start a server.
 */
export class SandboxRegistry {
  readonly #attached = new Map<string, Attached>();
  /** Attaches under way: a second attach (or a detach) of the same sandbox waits for the first. */
  readonly #starting = new Map<string, Promise<void>>();
  /** Connections accepted (not refused) across all sandboxes. */
  #open = 0;
  /** Over-cap connections, answered 429: node's parser may still hand us a request on them. */
  readonly #refused = new WeakSet<Duplex>();

  constructor(
    readonly perSandbox: number,
    readonly total: number,
  ) {}

  get(id: string): Attached | undefined {
    return this.#attached.get(id);
  }

  ids(): string[] {
    return [...this.#attached.keys()];
  }

  /**
   * Once any attach of `id` under way has settled: `update` the attached entry, or `start` one
   * (none other of the same id starts meanwhile) and register it.
   */
  async attach(
    id: string,
    update: (entry: Attached) => Promise<void>,
    start: () => Promise<Attached>,
  ): Promise<void> {
    for (;;) {
      const pending = this.#starting.get(id);
      if (!pending) break;
      await pending.catch(() => {});
    }
    const existing = this.#attached.get(id);
    if (existing) return update(existing);
    const starting = start().then((entry) => {
      this.#attached.set(id, entry);
    });
    this.#starting.set(id, starting);
    try {
      await starting;
    } finally {
      this.#starting.delete(id);
    }
  }

  /**
   * Counts a new connection of `entry` against the caps, until it closes; or, past a cap, marks
   * it refused and says which cap.
   */
  admit(entry: Attached, socket: Duplex): string | null {
    const cap =
      entry.sockets.size >= this.perSandbox
        ? `this sandbox's cap is ${this.perSandbox}`
        : this.#open >= this.total
          ? `the proxy's cap across sandboxes is ${this.total}`
          : null;
    if (cap) {
      this.#refused.add(socket);
      return cap;
    }
    this.#open += 1;
    entry.sockets.add(socket);
    socket.on('close', () => {
      this.#open -= 1;
      entry.sockets.delete(socket);
    });
    return null;
  }

  refused(socket: Duplex): boolean {
    return this.#refused.has(socket);
  }

  /**
   * Unregisters one sandbox (after its attach under way) and closes its server and sockets;
   * gives back the entry it stopped, if any.
   */
  async stop(id: string): Promise<Attached | undefined> {
    await this.#starting.get(id)?.catch(() => {});
    const entry = this.#attached.get(id);
    this.#attached.delete(id);
    if (!entry) return undefined;
    const closed = new Promise<void>((resolve) => entry.server.close(() => resolve()));
    entry.server.closeAllConnections();
    for (const s of entry.sockets) s.destroy();
    await closed;
    return entry;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#starting.values()].map((p) => p.catch(() => {})));
    await Promise.all(this.ids().map((id) => this.stop(id)));
  }
}
