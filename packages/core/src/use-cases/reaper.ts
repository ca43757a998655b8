import type { Clock } from '../clock.js';
import { sandboxKey } from '../container.js';
import type { ExpiryStore } from '../ports/expiry-store.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';

export interface ReaperOptions {
  store: ExpiryStore;
  runtime: SandboxRuntime;
  clock: Clock;
  /** Removals in flight at once, so one slow removal does not hold the rest. */
  concurrency: number;
  /** Most containers one tick reaps; the rest wait for the next tick. */
  maxPerTick: number;
  /** How long expired and failed rows stay queryable before they are purged. */
  retentionMs: number;
  /** Called for each container reaped (for logs and metrics). */
  onReaped?: (containerId: string, lagMs: number) => void;
  /** Called when a removal fails; that container is retried on a later tick. */
  onError?: (error: unknown, containerId: string) => void;
}

export interface ReapReport {
  expired: number;
  failed: number;
  purged: number;
}

/**
 * Expires containers whose `last_active_at + minutes` has passed: their sandboxes are removed and
 * their rows become `expired`, still queryable until the retention period ends.
 */
export class Reaper {
  constructor(private readonly options: ReaperOptions) {}

  async tick(signal?: AbortSignal): Promise<ReapReport> {
    const { store, runtime, clock, concurrency, maxPerTick, retentionMs } = this.options;
    const now = clock.now();
    const report: ReapReport = { expired: 0, failed: 0, purged: 0 };
    const failedIds: string[] = [];
    let claimed = 0;

    const worker = async (): Promise<void> => {
      while (!signal?.aborted && claimed < maxPerTick) {
        claimed += 1;
        const claim: { id: string | null } = { id: null };
        try {
          const reaped = await store.reapOne(now, failedIds, async (record) => {
            claim.id = record.id;
            await runtime.remove(sandboxKey(record));
          });
          if (!reaped) return;
          report.expired += 1;
          const deadline = reaped.lastActiveAt.getTime() + reaped.expiresAfterMinutes * 60_000;
          this.options.onReaped?.(reaped.id, clock.now().getTime() - deadline);
        } catch (error) {
          if (claim.id === null) throw error; // the store itself failed: stop this tick
          failedIds.push(claim.id);
          report.failed += 1;
          this.options.onError?.(error, claim.id);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (!signal?.aborted)
      report.purged = await store.purge(new Date(now.getTime() - retentionMs), 1000);
    return report;
  }
}
