import type { ContainerRecord } from '../container.js';

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
    work: (record: ContainerRecord) => Promise<void>,
  ): Promise<ContainerRecord | null>;
  /** Deletes up to `limit` expired or failed rows whose status changed before `before`. */
  purge(before: Date, limit: number): Promise<number>;
}
