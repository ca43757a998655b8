import type { ContainerRecord } from '../container.js';

/** What `work` reports to be written with the expiry, in the same statement. */
export interface ExpiryOutcome {
  /** When /mnt/data was archived; null when it was not. */
  archivedAt: Date | null;
  archiveError: string | null;
}

export interface ExpiryStore {
  /**
   * Claims one running container whose deadline had passed at `now` and is not in `exclude`,
   * holds the claim while `work` runs, then marks the container expired. Replicas never claim the
   * same container (the claim is a row lock taken with SKIP LOCKED). If `work` throws, or the
   * process dies, the claim is released and the container stays running for a later attempt.
   * Resolves to the container reaped, or null when none is due.
   */
  reapOne(
    now: Date,
    exclude: readonly string[],
    work: (record: ContainerRecord) => Promise<ExpiryOutcome | void>,
  ): Promise<ContainerRecord | null>;
  /** Deletes up to `limit` expired or failed rows whose status changed before `before`. */
  purge(before: Date, limit: number): Promise<number>;
}
