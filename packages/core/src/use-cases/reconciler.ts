import type { Clock } from '../clock.js';
import { eachWithDeadline } from '../concurrency.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import { SandboxUnresponsiveError } from '../errors.js';
import type { ContainerStore } from '../ports/container-store.js';
import { unresponsiveReason } from './container-access.js';
import type { ManagedSandbox, SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { PoolSlot, PoolStore } from '../ports/sandbox-pool.js';

export interface ReconcileReport {
  /** Labelled sandboxes with no live row, removed. */
  orphansRemoved: number;
  /** Creates and deletes a crash left half-done, finished (rows and sandboxes removed). */
  abandonedFinished: number;
  /** Running rows whose sandbox vanished, stopped or stopped answering, now `failed`. */
  markedFailed: number;
  /** Warm-pool slots whose sandbox died, vanished or never finished starting, removed. */
  poolSlotsRemoved: number;
  /** Items that failed or ran past their deadline; the next run tries them again. */
  errors: number;
}

export interface ReconcilerOptions {
  store: ContainerStore;
  runtime: SandboxRuntime;
  clock: Clock;
  /** A `creating` row younger than this may belong to a create still in flight elsewhere. */
  creatingGraceMs: number;
  /** Sandboxes handled at once. */
  concurrency?: number;
  /** How long one sandbox may take before the run moves on without it. */
  itemDeadlineMs?: number;
  /** The warm pool's rows; without it pool sandboxes are left alone. */
  pool?: PoolStore;
  /** Called for each item that failed (for logs and metrics). */
  onError?: (containerId: string, error: unknown) => void;
  /** Called for each running container found dead and marked failed (for the event log). */
  onMarkedFailed?: (containerId: string, reason: string) => void;
}

/**
 * Makes Docker and Postgres agree, by label. Safe to run at any time and on several replicas:
 * every step is idempotent and never touches a create that may still be in flight. Sandboxes are
 * handled concurrently, each under a deadline, so one wedged sandbox never stalls a run.
 */
export class Reconciler {
  constructor(private readonly options: ReconcilerOptions) {}

  async run(): Promise<ReconcileReport> {
    const { store, runtime, clock } = this.options;
    const report: ReconcileReport = {
      orphansRemoved: 0,
      abandonedFinished: 0,
      markedFailed: 0,
      poolSlotsRemoved: 0,
      errors: 0,
    };
    const each = <T>(
      items: Iterable<T> | AsyncIterable<T>,
      id: (t: T) => string,
      work: (t: T) => Promise<void>,
    ) =>
      eachWithDeadline(items, {
        concurrency: this.options.concurrency ?? 8,
        itemDeadlineMs: this.options.itemDeadlineMs ?? 30_000,
        work,
        onError: (item, error) => {
          report.errors += 1;
          this.options.onError?.(id(item), error);
        },
      });

    const abandoned = await store.listAbandoned(
      new Date(clock.now().getTime() - this.options.creatingGraceMs),
    );
    await each(
      abandoned,
      (r) => r.id,
      async (row) => {
        await runtime.remove(sandboxKey(row));
        await store.remove(row.id);
        report.abandonedFinished += 1;
      },
    );

    // Rows are written before sandboxes exist, so a labelled sandbox without a live row is an orphan.
    const all = await runtime.listManaged();
    // A pool sandbox belongs to its slot: a slot row, or a live container's `pool_slot`.
    const pooled = all.filter((s) => s.poolSlot !== undefined);
    const sandboxes = all.filter((s) => s.poolSlot === undefined);
    const live = await store.liveIds(sandboxes.map((s) => s.containerId));
    const pool = this.options.pool;
    const liveSlots = pool
      ? await pool.liveSlots(pooled.map((s) => s.containerId))
      : new Set(pooled.map((s) => s.containerId));
    await each(
      [
        ...sandboxes.filter((s) => !live.has(s.containerId)),
        ...pooled.filter((s) => !liveSlots.has(s.containerId)),
      ],
      (s: ManagedSandbox) => s.containerId,
      async (sandbox) => {
        await runtime.remove(sandbox.containerId);
        report.orphansRemoved += 1;
      },
    );

    const byId = new Map(all.map((s) => [s.containerId, s]));
    await each(
      runningContainers(store),
      (r: ContainerRecord) => r.id,
      async (row) => {
        const key = sandboxKey(row);
        if (byId.get(key)?.running) return;
        // Listed before this row became running? Ask Docker about this one directly.
        let reason: string;
        try {
          const state = await runtime.inspect(key);
          if (state?.running) return;
          reason = !state
            ? 'sandbox vanished'
            : state.oomKilled
              ? 'sandbox was killed for exceeding its memory limit'
              : `sandbox stopped (exit code ${state.exitCode ?? 'unknown'})`;
        } catch (error) {
          if (!(error instanceof SandboxUnresponsiveError)) throw error;
          reason = unresponsiveReason(error);
        }
        await store.setStatus(row.id, 'failed', reason);
        report.markedFailed += 1;
        this.options.onMarkedFailed?.(row.id, reason);
        await runtime.remove(key);
      },
    );
    if (pool) {
      // Slot rows whose sandbox never finished starting (a filler crashed) or died while idle.
      const creatingBefore = clock.now().getTime() - this.options.creatingGraceMs;
      const runningSlots = new Set(pooled.filter((s) => s.running).map((s) => s.containerId));
      await each(
        await pool.list(),
        (slot: PoolSlot) => slot.slotId,
        async (slot) => {
          if (slot.state === 'filling' && slot.updatedAt.getTime() >= creatingBefore) return;
          if (slot.state === 'idle') {
            if (runningSlots.has(slot.slotId)) return;
            // Idle since the listing? Ask Docker about this one directly.
            if ((await runtime.inspect(slot.slotId))?.running) return;
          }
          await runtime.remove(slot.slotId);
          await pool.remove(slot.slotId);
          report.poolSlotsRemoved += 1;
        },
      );
    }
    return report;
  }
}

/** Every running container, page by page (by id), without holding them all in memory. */
export async function* runningContainers(
  store: Pick<ContainerStore, 'listRunning'>,
  pageSize = 500,
): AsyncGenerator<ContainerRecord> {
  let after: string | undefined;
  for (;;) {
    const rows = await store.listRunning(pageSize, after);
    if (rows.length === 0) return;
    after = rows.at(-1)!.id;
    yield* rows;
  }
}
