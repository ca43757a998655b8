import { randomBytes, randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ContainerRecord, MemoryLimit } from '../container.js';
import { memoryLimitBytes } from '../container.js';
import type { EgressController } from '../ports/egress-controller.js';
import type {
  ClaimOutcome,
  PoolNetwork,
  PoolSizes,
  PoolSlot,
  PoolStore,
  SandboxPoolRuntime,
} from '../ports/sandbox-pool.js';

/**
 * Pool uids: a range of their own above cold creates' (100 000 + 2^24), so a cold create never
 * picks one an idle pool sandbox runs as; the store checks pool uids against live containers.
 */
export const POOL_UID_BASE = 100_000 + (1 << 24);
const POOL_UID_SPAN = 1 << 24;

export interface SandboxPoolOptions {
  store: PoolStore;
  runtime: SandboxPoolRuntime;
  clock: Clock;
  /** Idle sandboxes kept per network and memory limit; absent or 0: no pool. */
  sizes: PoolSizes;
  /**
   * The proxy's side of `allowlist` slots: their egress directories are made before their
   * sandboxes and removed with them. Without it (and `egressScope`), no allowlist pool.
   */
  egress?: Pick<EgressController, 'prepareDir' | 'detach'>;
  /** Which egress directory root this process's proxy serves: it claims only slots made there. */
  egressScope?: string;
  /** Pause between two pool creates: the filler never competes with requests at full speed. */
  fillIntervalMs: number;
  /** How often the filler checks the pool without being woken by a claim. */
  checkIntervalMs?: number;
  newUid?: () => number;
  onClaim?: (memoryLimit: MemoryLimit, network: PoolNetwork) => void;
  onMiss?: (memoryLimit: MemoryLimit, network: PoolNetwork) => void;
  onFillError?: (error: unknown) => void;
}

/** A slot id: also the suffix of its Docker name and of its egress directory. */
const newSlotId = (): string => `pool_${randomBytes(12).toString('hex')}`;

/**
 * The warm pool: sandboxes created ahead of requests, each used once by one create and never
 * recycled. A claim is a row lock in Postgres, so replicas never share a sandbox; the filler tops
 * the pool up one sandbox at a time. A create that finds the pool empty never waits for it.
 */
export class SandboxPool {
  #timer: NodeJS.Timeout | null = null;
  #filling: Promise<void> | null = null;
  #running = false;
  /** Set by stop(): a fill in progress ends after its current sandbox. */
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(private readonly options: SandboxPoolOptions) {}

  /** Whether creates of this limit and network may be served from the pool. */
  serves(memoryLimit: MemoryLimit, network: PoolNetwork = 'disabled'): boolean {
    return this.#size(memoryLimit, network) > 0;
  }

  #size(memoryLimit: MemoryLimit, network: PoolNetwork): number {
    if (network === 'allowlist' && !this.#scope()) return 0;
    return this.options.sizes[network]?.[memoryLimit] ?? 0;
  }

  /** The scope of this process's allowlist slots; null without a proxy to serve them. */
  #scope(): string | null {
    return this.options.egress && this.options.egressScope ? this.options.egressScope : null;
  }

  /** The pools this process fills, in a fixed order: `disabled` ones first. */
  #pools(): { memoryLimit: MemoryLimit; network: PoolNetwork; size: number }[] {
    return (['disabled', 'allowlist'] as const).flatMap((network) =>
      (Object.keys(this.options.sizes[network] ?? {}) as MemoryLimit[])
        .map((memoryLimit) => ({ memoryLimit, network, size: this.#size(memoryLimit, network) }))
        .filter((p) => p.size > 0),
    );
  }

  /** Removes a slot's sandbox, then its egress directory; callers remove its row after both. */
  async #discard(slot: Pick<PoolSlot, 'slotId' | 'network'>): Promise<void> {
    await this.options.runtime.removePooled(slot.slotId).catch(() => {});
    if (slot.network === 'allowlist')
      await this.options.egress?.detach(slot.slotId).catch(() => {});
  }

  /** Memory the pool's sandboxes hold (their limits), for capacity figures. */
  committedBytes(slots: PoolSlot[]): number {
    return slots.reduce((sum, s) => sum + memoryLimitBytes(s.memoryLimit), 0);
  }

  /**
   * Claims an idle sandbox for `record` and adopts it. `empty`: none could be had (none idle, or
   * the one taken turned out dead, cleaned up here); the caller creates cold at once. An
   * `allowlist` claim takes a slot whose egress directory this process's proxy serves; the caller
   * attaches the proxy to it (`sandboxKey`). One with `domain_secrets` is never served: its CA and
   * placeholders are environment fixed when its sandbox is created.
   */
  async claim(record: ContainerRecord, maxLive: number, now: Date): Promise<ClaimOutcome> {
    const { store, runtime } = this.options;
    const policy = record.networkPolicy;
    const network = policy.type;
    if (policy.type === 'allowlist' && (policy.domainSecrets?.length ?? 0) > 0)
      return { outcome: 'empty' };
    if (!this.serves(record.memoryLimit, network)) return { outcome: 'empty' };
    const scope = network === 'allowlist' ? this.#scope() : null;
    const claimed = await store.claim(record, maxLive, now, scope);
    if (claimed.outcome === 'over_cap') return claimed;
    if (claimed.outcome === 'empty') {
      this.options.onMiss?.(record.memoryLimit, network);
      this.kick();
      return claimed;
    }
    // Nothing is renamed (Docker's rename is slow): the container's `poolSlot` names its sandbox.
    if (!(await runtime.runsPooled(claimed.slot.slotId).catch(() => false))) {
      // The pool sandbox died (or Docker did not answer): nothing of it is kept, the create goes
      // cold. A crash right here leaves a `creating` row naming the slot; reconcile removes both.
      await this.#discard(claimed.slot);
      await store.abandonClaim(record.id);
      this.options.onMiss?.(record.memoryLimit, network);
      return { outcome: 'empty' };
    }
    this.options.onClaim?.(record.memoryLimit, network);
    // No refill yet: the caller kicks once its create is answered, so the filler's Docker create
    // doesn't compete with the rest of it (seeding, the row, the answer).
    return claimed;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = false;
    const loop = async () => {
      while (!this.#stopped) {
        try {
          await this.fillOnce();
        } catch (error) {
          this.options.onFillError?.(error);
        }
        if (this.#stopped) break;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#timer = setTimeout(resolve, this.options.checkIntervalMs ?? 5_000);
        });
        this.#wake = null;
      }
    };
    this.#filling = loop();
  }

  /** Wakes the filler (after a claim or a miss). */
  kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#running = false;
    this.kick();
    await this.#filling;
    this.#filling = null;
  }

  /**
   * Tops every pool up to its size, one sandbox at a time, pausing between creates. An allowlist
   * slot's row comes first, then its egress directory, then its sandbox: whatever a crash leaves
   * has a row to be reconciled (and swept) against.
   */
  async fillOnce(): Promise<number> {
    const { store, runtime } = this.options;
    const pools = this.#pools();
    let created = 0;
    for (;;) {
      const slots = await store.list();
      const short = pools.find(
        (p) =>
          slots.filter(
            (s) =>
              s.memoryLimit === p.memoryLimit &&
              s.network === p.network &&
              s.egressScope === (p.network === 'allowlist' ? this.#scope() : null),
          ).length < p.size,
      );
      if (!short || this.#stopped) return created;
      const slot: PoolSlot = {
        slotId: newSlotId(),
        memoryLimit: short.memoryLimit,
        network: short.network,
        egressScope: short.network === 'allowlist' ? this.#scope() : null,
        sandboxUid: (this.options.newUid ?? (() => POOL_UID_BASE + randomInt(POOL_UID_SPAN)))(),
        state: 'filling',
        updatedAt: this.options.clock.now(),
      };
      const reserved = await store.reserve(slot, short.size);
      if (reserved === 'full') continue;
      if (reserved === 'uid_taken') continue;
      try {
        if (slot.network === 'allowlist') await this.options.egress!.prepareDir(slot.slotId);
        await runtime.createPooled({
          slotId: slot.slotId,
          uid: slot.sandboxUid,
          memoryLimitBytes: memoryLimitBytes(slot.memoryLimit),
          network: slot.network,
        });
        await store.markIdle(slot.slotId);
      } catch (error) {
        await this.#discard(slot);
        await store.remove(slot.slotId).catch(() => {});
        throw error;
      }
      created += 1;
      if (this.options.fillIntervalMs > 0)
        await new Promise((r) => setTimeout(r, this.options.fillIntervalMs));
    }
  }
}
