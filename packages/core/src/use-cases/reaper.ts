import type { Clock } from '../clock.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import type { ExpiryOutcome, ExpiryStore } from '../ports/expiry-store.js';
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
  /** Files API files past their `expires_after`, purged each tick after the containers. */
  fileExpiry?: { purge(limit: number, signal?: AbortSignal): Promise<number> };
  /** Called for each container reaped (for logs and metrics). */
  onReaped?: (containerId: string, lagMs: number) => void;
  /**
   * Keeps /mnt/data of each expiring container before its sandbox is removed, and purges those
   * archives when their rows' retention ends. Never throws (failures are its own to report).
   */
  archiver?: {
    archive(record: ContainerRecord): Promise<ExpiryOutcome>;
    purge(before: Date): Promise<number>;
  };
  /** Called when a removal fails; that container is retried on a later tick. */
  onError?: (error: unknown, containerId: string) => void;
}

export interface ReapReport {
  expired: number;
  failed: number;
  purged: number;
  /** Files API files removed because their `expires_after` passed. */
  filesExpired: number;
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
    const report: ReapReport = { expired: 0, failed: 0, purged: 0, filesExpired: 0 };
    const failedIds: string[] = [];
    let claimed = 0;

    const worker = async (): Promise<void> => {
      while (!signal?.aborted && claimed < maxPerTick) {
        claimed += 1;
        const claim: { id: string | null } = { id: null };
        try {
          const reaped = await store.reapOne(now, failedIds, async (record) => {
            claim.id = record.id;
            try {
              const archived = await this.options.archiver?.archive(record);
              await runtime.remove(sandboxKey(record));
              return archived;
            } catch (error) {
              // Excluded while the claim is still held: the store releases it before this
              // worker hears of the failure, and another worker must not retry it this tick.
              failedIds.push(record.id);
              throw error;
            }
          });
          if (!reaped) return;
          report.expired += 1;
          const deadline = reaped.lastActiveAt.getTime() + reaped.expiresAfterMinutes * 60_000;
          this.options.onReaped?.(reaped.id, clock.now().getTime() - deadline);
        } catch (error) {
          if (claim.id === null) throw error; // the store itself failed: stop this tick
          if (!failedIds.includes(claim.id)) failedIds.push(claim.id);
          report.failed += 1;
          this.options.onError?.(error, claim.id);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (!signal?.aborted) {
      const before = new Date(now.getTime() - retentionMs);
      // The archived bytes go first: a crash between the two leaves rows to purge, never orphans.
      await this.options.archiver?.purge(before);
      report.purged = await store.purge(before, 1000);
    }
    if (!signal?.aborted && this.options.fileExpiry)
      report.filesExpired = await this.options.fileExpiry.purge(1000, signal);
    return report;
  }
}
