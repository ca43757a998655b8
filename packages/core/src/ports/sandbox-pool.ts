import type { ContainerRecord, MemoryLimit } from '../container.js';

/**
 * The network a pool sandbox was made for. An `allowlist` one has the body a cold allowlist
 * sandbox gets (proxy settings, its egress directory mounted, the forwarder running) with no proxy
 * listening yet: a claim attaches the proxy to that directory with the claimer's allowlist.
 */
export type PoolNetwork = 'disabled' | 'allowlist';

/** Idle sandboxes kept per network and memory limit; an absent or 0 size has no pool. */
export type PoolSizes = Partial<Record<PoolNetwork, Partial<Record<MemoryLimit, number>>>>;

/** One warm-pool sandbox: created and started before any request, owned by no project yet. */
export interface PoolSlot {
  slotId: string;
  memoryLimit: MemoryLimit;
  network: PoolNetwork;
  /**
   * `allowlist`: the egress directory root its mount lives under (the proxy's `BERTH_EGRESS_DIR`);
   * only a process whose proxy serves that root can claim it. Null for `disabled`.
   */
  egressScope: string | null;
  /** The uid its sandbox runs as; it becomes the claiming container's `sandboxUid`. */
  sandboxUid: number;
  /** `filling`: the row is written, the sandbox may not exist yet. `idle`: ready to be claimed. */
  state: 'filling' | 'idle';
  updatedAt: Date;
}

export type ReserveOutcome = 'reserved' | 'full' | 'uid_taken';

export type ClaimOutcome =
  { outcome: 'claimed'; slot: PoolSlot } | { outcome: 'empty' } | { outcome: 'over_cap' };

export interface PoolStore {
  /**
   * Writes a `filling` row unless the pool of its memory limit, network and egress scope already
   * holds `target` rows
   * (filling or idle): checked and written atomically, so fillers on several replicas never
   * overshoot. `uid_taken`: a live container or another slot has the uid; pick another.
   */
  reserve(slot: PoolSlot, target: number): Promise<ReserveOutcome>;
  /** filling → idle: the sandbox runs. */
  markIdle(slotId: string): Promise<void>;
  /** Removes a slot's row (its sandbox failed, died or was removed). */
  remove(slotId: string): Promise<void>;
  /**
   * In one transaction: the project's live cap (as `ContainerStore.insertCreating`), the oldest
   * idle slot of `record.memoryLimit` and of the network of `record.networkPolicy` (for
   * `allowlist`, of `egressScope`) taken under a row lock that other claimers skip (two replicas
   * never take the same one), the container's `creating` row written with the slot's uid and
   * `pool_slot`, the slot's row deleted.
   */
  claim(
    record: ContainerRecord,
    maxLive: number,
    now: Date,
    egressScope: string | null,
  ): Promise<ClaimOutcome>;
  /** Deletes the `creating` row a claim wrote, whose sandbox could not be adopted. */
  abandonClaim(containerId: string): Promise<void>;
  /** Every slot row, for the filler's counts and the reconciler. */
  list(): Promise<PoolSlot[]>;
  /** Of these slot ids, those that belong to a row: a slot row, or a live container's `pool_slot`. */
  liveSlots(slotIds: string[]): Promise<Set<string>>;
}

/** The Docker side of the pool. */
export interface SandboxPoolRuntime {
  /**
   * Creates and starts a pool sandbox with a cold sandbox's hardening and limits, its own uid and
   * no project; labelled as a pool member of this instance. `allowlist`: a cold allowlist
   * sandbox's body, mounting the egress directory named by the slot id (which must exist), with the
   * forwarder started. Nothing is left on failure.
   */
  createPooled(spec: {
    slotId: string;
    uid: number;
    memoryLimitBytes: number;
    network: PoolNetwork;
  }): Promise<void>;
  /** Whether a pool sandbox still runs (a claim hands out no dead one). */
  runsPooled(slotId: string): Promise<boolean>;
  /** Removes a pool sandbox. Idempotent. */
  removePooled(slotId: string): Promise<void>;
}
