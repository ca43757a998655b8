import type { ContainerRecord, ContainerStatus } from '../container.js';
import type { Page, PageRequest } from '../pagination.js';

export interface ContainerListFilter extends PageRequest {
  name?: string | undefined;
}

/** `uid_taken`: another sandbox that may still exist has the record's uid; pick another. */
export type InsertOutcome = 'inserted' | 'over_cap' | 'uid_taken';

export interface ContainerStore {
  /**
   * Inserts a `creating` row, unless the project already holds `maxLive` containers that are
   * past their deadline at `now` (checked and inserted atomically, so concurrent creates can't
   * pass the cap).
   */
  insertCreating(record: ContainerRecord, maxLive: number, now: Date): Promise<InsertOutcome>;
  /** creating → running. */
  markRunning(id: string): Promise<void>;
  /** A visible container (running, expired or failed) of this project, or null. */
  get(projectId: string, id: string): Promise<ContainerRecord | null>;
  list(projectId: string, filter: ContainerListFilter): Promise<Page<ContainerRecord>>;
  /** Hides the container (running/expired/failed → deleting); null if it was not visible. */
  markDeleting(projectId: string, id: string): Promise<ContainerRecord | null>;
  /** Removes the row for good. */
  remove(id: string): Promise<void>;
  /** Records activity; returns false when the container is no longer running. */
  touch(id: string, at: Date): Promise<boolean>;
  setStatus(id: string, status: ContainerStatus, reason?: string | null): Promise<void>;
  /** Rows stuck in creating since before `before`, and every deleting row: work a crash left. */
  listAbandoned(creatingBefore: Date): Promise<ContainerRecord[]>;
  /** Ids of rows whose sandbox should exist (creating, running, deleting). */
  liveIds(ids: string[]): Promise<Set<string>>;
  /** Running rows, for reconciliation. */
  listRunning(limit: number, afterId?: string): Promise<ContainerRecord[]>;
}
