import { randomBytes, randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ContainerRecord, MemoryLimit } from '../container.js';
import { memoryLimitBytes } from '../container.js';
import type {
  ClaimOutcome,
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
  /** Idle sandboxes kept per memory limit; a limit that is absent or 0 has no pool. */
  sizes: Partial<Record<MemoryLimit, number>>;
  /** Pause between two pool creates: the filler never competes with requests at full speed. */
  fillIntervalMs: number;
  /** How often the filler checks the pool without being woken by a claim. */
  checkIntervalMs?: number;
  newUid?: () => number;
  onClaim?: (memoryLimit: MemoryLimit) => void;
  onMiss?: (memoryLimit: MemoryLimit) => void;
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
  #stopped = true;
  #wake: (() => void) | null = null;

  constructor(private readonly options: SandboxPoolOptions) {}

  /** Whether creates of this limit may be served from the pool. */
  serves(memoryLimit: MemoryLimit): boolean {
    return (this.options.sizes[memoryLimit] ?? 0) > 0;
  }

  /** Memory the pool's sandboxes hold (their limits), for capacity figures. */
  committedBytes(slots: PoolSlot[]): number {
    return slots.reduce((sum, s) => sum + memoryLimitBytes(s.memoryLimit), 0);
  }

  /**
   * Claims an idle sandbox for `record` and adopts it. `empty`: none could be had (none idle, or
   * the one taken turned out dead, cleaned up here); the caller creates cold at once.
   */
  async claim(record: ContainerRecord, maxLive: number, now: Date): Promise<ClaimOutcome> {
    const { store, runtime } = this.options;
    if (!this.serves(record.memoryLimit)) return { outcome: 'empty' };
    const claimed = await store.claim(record, maxLive, now);
    if (claimed.outcome === 'over_cap') return claimed;
    if (claimed.outcome === 'empty') {
      this.options.onMiss?.(record.memoryLimit);
      this.kick();
      return claimed;
    }
    // Nothing is renamed (Docker's rename is slow): the container's `poolSlot` names its sandbox.
    if (!(await runtime.runsPooled(claimed.slot.slotId).catch(() => false))) {
      // The pool sandbox died (or Docker did not answer): nothing of it is kept, the create goes
      // cold. A crash right here leaves a `creating` row naming the slot; reconcile removes both.
      await runtime.removePooled(claimed.slot.slotId).catch(() => {});
      await store.abandonClaim(record.id);
      this.options.onMiss?.(record.memoryLimit);
      return { outcome: 'empty' };
    }
    this.options.onClaim?.(record.memoryLimit);
    // Refill after the claim, so the filler's Docker create doesn't compete with this claim's.
    this.kick();
    return claimed;
  }

  start(): void {
    if (!this.#stopped) return;
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
    this.kick();
    await this.#filling;
    this.#filling = null;
  }

  /** Tops every pool up to its size, one sandbox at a time, pausing between creates. */
  async fillOnce(): Promise<number> {
    const { store, runtime, sizes } = this.options;
    let created = 0;
    for (;;) {
      const slots = await store.list();
      const limit = (Object.keys(sizes) as MemoryLimit[]).find(
        (l) => slots.filter((s) => s.memoryLimit === l).length < (sizes[l] ?? 0),
      );
      if (!limit || this.#stopped) return created;
      const slot: PoolSlot = {
        slotId: newSlotId(),
        memoryLimit: limit,
        sandboxUid: (this.options.newUid ?? (() => POOL_UID_BASE + randomInt(POOL_UID_SPAN)))(),
        state: 'filling',
        updatedAt: this.options.clock.now(),
      };
      const reserved = await store.reserve(slot, sizes[limit] ?? 0);
      if (reserved === 'full') continue;
      if (reserved === 'uid_taken') continue;
      try {
        await runtime.createPooled({
          slotId: slot.slotId,
          uid: slot.sandboxUid,
          memoryLimitBytes: memoryLimitBytes(limit),
        });
        await store.markIdle(slot.slotId);
      } catch (error) {
        await runtime.removePooled(slot.slotId).catch(() => {});
        await store.remove(slot.slotId).catch(() => {});
        throw error;
      }
      created += 1;
      if (this.options.fillIntervalMs > 0)
        await new Promise((r) => setTimeout(r, this.options.fillIntervalMs));
    }
  }
}
