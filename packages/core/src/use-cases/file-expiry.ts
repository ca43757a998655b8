import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { FileStore } from '../ports/file-store.js';

export interface FileExpiryOptions {
  files: FileStore;
  blobs: BlobStore;
  clock: Clock;
}

/**
 * Removes Files API files whose `expires_after` has passed. They already answer 404 from their
 * deadline on (reads filter them); this takes away their bytes, then their rows. Bytes go first,
 * so a crash in between leaves a row that still reads as gone, never bytes nobody can find. Two
 * replicas purging the same file both succeed: both deletes are idempotent.
 */
export class FileExpiry {
  constructor(private readonly options: FileExpiryOptions) {}

  async purge(limit: number, signal?: AbortSignal): Promise<number> {
    const { files, blobs, clock } = this.options;
    const due = await files.listExpired(unixSeconds(clock.now()), limit);
    let purged = 0;
    for (const { id, projectId } of due) {
      if (signal?.aborted) break;
      await blobs.delete(id);
      if (await files.delete(projectId, id)) purged += 1;
    }
    return purged;
  }
}
