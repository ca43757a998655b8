import type { Readable } from 'node:stream';

export interface SandboxFileEntry {
  /** Relative to /mnt/data, `/`-separated. */
  path: string;
  bytes: number;
}

/**
 * Files inside a sandbox's /mnt/data, with the sandbox treated as hostile: no symlink is ever
 * followed, and nothing it reports is trusted without checking. Paths are relative to /mnt/data
 * and already checked lexically (see resolveDataPath).
 */
export interface SandboxFiles {
  /** Streams `data` into the file, replacing it atomically once complete; nothing is left on failure. */
  write(
    containerId: string,
    path: string,
    data: Readable,
    options: { maxBytes: number },
  ): Promise<{ bytes: number }>;
  /** A regular file's bytes, or null when there is none (missing, a symlink, a directory). */
  open(containerId: string, path: string): Promise<{ size: number; stream: Readable } | null>;
  /** Regular files under /mnt/data, symlinks skipped. */
  list(containerId: string): Promise<SandboxFileEntry[]>;
  /** Idempotent: a missing file is not an error. */
  remove(containerId: string, path: string): Promise<void>;
}
