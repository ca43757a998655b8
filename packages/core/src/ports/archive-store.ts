import type { ArchiveState, ContainerFileRecord } from './file-store.js';

/** The database side of archives: which files of a container were kept, and when. */
export interface ArchiveStore {
  /** Every file row of a container, oldest first. */
  filesOf(containerId: string): Promise<ContainerFileRecord[]>;
  setFileState(containerId: string, fileId: string, state: ArchiveState): Promise<void>;
  /**
   * Archived files of expired or failed containers whose status changed before `before` (their
   * rows are due to be purged), up to `limit`.
   */
  purgeable(before: Date, limit: number): Promise<{ containerId: string; fileId: string }[]>;
  /** Archived files of one container (for a delete). */
  archivedOf(containerId: string): Promise<string[]>;
}
