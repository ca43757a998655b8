import type { Page, PageRequest } from '../pagination.js';

export interface FileRecord {
  id: string;
  projectId: string;
  filename: string;
  purpose: string;
  bytes: number;
  createdAt: number;
  /** Unix seconds from which the file is gone (`expires_after`); null: kept until deleted. */
  expiresAt: number | null;
}

export type ContainerFileSource = 'user' | 'assistant';

/** What became of a file when its container expired (see docs/files.md). */
export type ArchiveState = 'archived' | 'over_cap' | 'failed' | 'purged';

export interface ContainerFileRecord {
  id: string;
  containerId: string;
  /** Relative to /mnt/data. */
  path: string;
  bytes: number;
  source: ContainerFileSource;
  createdAt: number;
  /** Set when the container expired and its files were archived; null before. */
  archiveState?: ArchiveState | null;
}

/** Reads take `now` (unix seconds): a file whose `expiresAt` is not after it is not there. */
export interface FileStore {
  insert(record: FileRecord): Promise<void>;
  get(projectId: string, id: string, now: number): Promise<FileRecord | null>;
  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
    now: number,
  ): Promise<Page<FileRecord>>;
  delete(projectId: string, id: string): Promise<boolean>;
  /** Up to `limit` files expired at `now`, oldest deadline first. */
  listExpired(now: number, limit: number): Promise<{ id: string; projectId: string }[]>;
}

export interface ContainerFileStore {
  /** Inserts, or replaces the bytes of the row at the same path, which keeps its id. */
  upsert(record: ContainerFileRecord): Promise<ContainerFileRecord>;
  get(containerId: string, id: string): Promise<ContainerFileRecord | null>;
  list(containerId: string, page: PageRequest): Promise<Page<ContainerFileRecord>>;
  delete(containerId: string, id: string): Promise<void>;
  /**
   * Makes the rows match what the sandbox holds: new paths become `assistant` files, vanished
   * ones are dropped, changed sizes updated. Rows written after `listedAt` are kept even when
   * missing from the listing (an upload that finished while the listing ran). `newId` names the
   * row it creates for an entry, and gives its created_at.
   */
  sync<E extends { path: string; bytes: number }>(
    containerId: string,
    present: E[],
    listedAt: Date,
    newId: (entry: E) => { id: string; createdAt: number },
  ): Promise<void>;
}
