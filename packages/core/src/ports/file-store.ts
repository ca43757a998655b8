import type { Page, PageRequest } from '../pagination.js';

export interface FileRecord {
  id: string;
  projectId: string;
  filename: string;
  purpose: string;
  bytes: number;
  createdAt: number;
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

export interface FileStore {
  insert(record: FileRecord): Promise<void>;
  get(projectId: string, id: string): Promise<FileRecord | null>;
  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
  ): Promise<Page<FileRecord>>;
  delete(projectId: string, id: string): Promise<boolean>;
}

export interface ContainerFileStore {
  /** Inserts, or replaces the row at the same path (a new id: it is a new file). */
  upsert(record: ContainerFileRecord): Promise<ContainerFileRecord>;
  get(containerId: string, id: string): Promise<ContainerFileRecord | null>;
  list(containerId: string, page: PageRequest): Promise<Page<ContainerFileRecord>>;
  delete(containerId: string, id: string): Promise<void>;
  /**
   * Makes the rows match what the sandbox holds: new paths become `assistant` files, vanished
   * ones are dropped, changed sizes updated. Rows written after `listedAt` are kept even when
   * missing from the listing (an upload that finished while the listing ran). `newId` names the
   * rows it creates.
   */
  sync(
    containerId: string,
    present: { path: string; bytes: number }[],
    listedAt: Date,
    newId: () => { id: string; createdAt: number },
  ): Promise<void>;
}
