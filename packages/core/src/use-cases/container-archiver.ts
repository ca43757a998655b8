import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import { PayloadTooLargeError } from '../errors.js';
import { newId } from '../ids.js';
import type { ArchiveStore } from '../ports/archive-store.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { ExpiryOutcome } from '../ports/expiry-store.js';
import type { ContainerFileStore } from '../ports/file-store.js';
import type { SandboxFiles } from '../ports/sandbox-files.js';

export interface ContainerArchiverOptions {
  sandbox: SandboxFiles;
  files: ContainerFileStore;
  archives: ArchiveStore;
  /** Where archived bytes live (a store of its own, beside the Files API's). */
  blobs: BlobStore;
  clock: Clock;
  /** Bytes one container's archive may hold; files past it are recorded as `over_cap`. */
  maxBytes: number;
  /** The whole archive of one container must finish within this; the rest is `failed`. */
  timeoutMs: number;
  /** A failure (a file, or the whole archive): counted and logged by the caller, never thrown. */
  onError?: (error: unknown, containerId: string, path?: string) => void;
  onArchived?: (containerId: string, report: ArchiveReport) => void;
}

export interface ArchiveReport {
  archived: number;
  bytes: number;
  overCap: number;
  failed: number;
  durationMs: number;
}

/** The blob key of one archived file; both ids are plain [a-z0-9_-]. */
export const archiveKey = (containerId: string, fileId: string): string =>
  `${containerId}_${fileId}`;

/**
 * Keeps a container's /mnt/data after it expires: before the reaper removes the sandbox, every
 * regular file is copied to the blob store, oldest first, until the per-container cap; each file's
 * row records what became of it. Nothing here blocks expiry: every failure is reported through
 * `onError` and the archive ends. Purging removes the bytes when the rows' retention ends.
 */
export class ContainerArchiver {
  constructor(private readonly options: ContainerArchiverOptions) {}

  /** Never throws: the outcome is written with the expiry (null `archivedAt` when it failed). */
  async archive(record: ContainerRecord): Promise<ExpiryOutcome> {
    const { sandbox, files, archives, blobs, clock, maxBytes } = this.options;
    const ref = { containerId: sandboxKey(record), uid: record.sandboxUid };
    const started = Date.now();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.options.timeoutMs);
    timer.unref?.();
    const signal = deadline.signal;
    const report: ArchiveReport = { archived: 0, bytes: 0, overCap: 0, failed: 0, durationMs: 0 };
    try {
      const listedAt = clock.now();
      const present = await sandbox.list(ref, { signal });
      await files.sync(record.id, present, listedAt, () => {
        const createdAt = unixSeconds(clock.now());
        return { id: newId('containerFile', createdAt), createdAt };
      });
      for (const row of await archives.filesOf(record.id)) {
        const room = maxBytes - report.bytes;
        if (row.bytes > room) {
          report.overCap += 1;
          await archives.setFileState(record.id, row.id, 'over_cap');
          continue;
        }
        let state: 'archived' | 'over_cap' | 'failed' = 'failed';
        try {
          if (signal.aborted) throw new Error(`the archive ran past ${this.options.timeoutMs} ms`);
          const file = await sandbox.open(ref, row.path, { signal });
          if (file) {
            try {
              const { bytes } = await blobs.put(archiveKey(record.id, row.id), file.stream, {
                maxBytes: room,
              });
              report.bytes += bytes;
              report.archived += 1;
              state = 'archived';
            } finally {
              file.stream.destroy();
            }
          }
        } catch (error) {
          // A file that grew past the room left between listing and copy is over the cap too.
          if (error instanceof PayloadTooLargeError) state = 'over_cap';
          else this.options.onError?.(error, record.id, row.path);
        }
        if (state === 'over_cap') report.overCap += 1;
        if (state === 'failed') report.failed += 1;
        await archives.setFileState(record.id, row.id, state);
      }
      report.durationMs = Date.now() - started;
      this.options.onArchived?.(record.id, report);
      return {
        archivedAt: clock.now(),
        archiveError: report.failed ? `${report.failed} file(s) could not be archived` : null,
      };
    } catch (error) {
      this.options.onError?.(error, record.id);
      return {
        archivedAt: null,
        archiveError: String((error as Error)?.message ?? error).slice(0, 1000),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** An archived file's bytes, or null when they are not there. */
  open(containerId: string, fileId: string) {
    return this.options.blobs.open(archiveKey(containerId, fileId));
  }

  /** Removes the bytes of archives whose rows are due to be purged (before the rows go). */
  async purge(before: Date, limit = 1000): Promise<number> {
    const { archives, blobs } = this.options;
    const due = await archives.purgeable(before, limit);
    for (const { containerId, fileId } of due) {
      await blobs.delete(archiveKey(containerId, fileId));
      await archives.setFileState(containerId, fileId, 'purged');
    }
    return due.length;
  }

  /** Removes a container's archived bytes (it is being deleted). */
  async discard(containerId: string): Promise<void> {
    for (const fileId of await this.options.archives.archivedOf(containerId))
      await this.options.blobs.delete(archiveKey(containerId, fileId));
  }
}
