import type { Clock } from '../clock.js';
import type { ContainerRecord } from '../container.js';
import type { ContainerStore } from '../ports/container-store.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';

export interface ReconcileReport {
  /** Labelled sandboxes with no live row, removed. */
  orphansRemoved: number;
  /** Creates and deletes a crash left half-done, finished (rows and sandboxes removed). */
  abandonedFinished: number;
  /** Running rows whose sandbox vanished or stopped, now `failed`. */
  markedFailed: number;
}

export interface ReconcilerOptions {
  store: ContainerStore;
  runtime: SandboxRuntime;
  clock: Clock;
  /** A `creating` row younger than this may belong to a create still in flight elsewhere. */
  creatingGraceMs: number;
}

/**
 * Makes Docker and Postgres agree, by label. Safe to run at any time and on several replicas:
 * every step is idempotent and never touches a create that may still be in flight.
 */
export class Reconciler {
  constructor(private readonly options: ReconcilerOptions) {}

  async run(): Promise<ReconcileReport> {
    const { store, runtime, clock } = this.options;
    const report: ReconcileReport = { orphansRemoved: 0, abandonedFinished: 0, markedFailed: 0 };

    const abandoned = await store.listAbandoned(
      new Date(clock.now().getTime() - this.options.creatingGraceMs),
    );
    for (const row of abandoned) {
      await runtime.remove(row.id);
      await store.remove(row.id);
      report.abandonedFinished += 1;
    }

    // Rows are written before sandboxes exist, so a labelled sandbox without a live row is an orphan.
    const sandboxes = await runtime.listManaged();
    const live = await store.liveIds(sandboxes.map((s) => s.containerId));
    for (const sandbox of sandboxes) {
      if (live.has(sandbox.containerId)) continue;
      await runtime.remove(sandbox.containerId);
      report.orphansRemoved += 1;
    }

    const byId = new Map(sandboxes.map((s) => [s.containerId, s]));
    for await (const row of runningContainers(store)) {
      const sandbox = byId.get(row.id);
      if (sandbox?.running) continue;
      // Listed before this row became running? Ask Docker about this one directly.
      const state = await runtime.inspect(row.id);
      if (state?.running) continue;
      const reason = !state
        ? 'sandbox vanished'
        : state.oomKilled
          ? 'sandbox was killed for exceeding its memory limit'
          : `sandbox stopped (exit code ${state.exitCode ?? 'unknown'})`;
      await store.setStatus(row.id, 'failed', reason);
      await runtime.remove(row.id);
      report.markedFailed += 1;
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
