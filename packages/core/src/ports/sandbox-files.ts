import type { Readable } from 'node:stream';

/** Which sandbox, and the uid its files belong to. */
export interface SandboxRef {
  containerId: string;
  uid: number;
}

export interface SandboxFileEntry {
  /** Relative to /mnt/data, `/`-separated. */
  path: string;
  bytes: number;
  /** The file's mtime as the sandbox reports it: a claim of code it runs, to be bounded by use. */
  modifiedAt?: Date;
}

/**
 * Files inside a sandbox's /mnt/data, with the sandbox treated as hostile: no symlink is ever
 * followed, and nothing it reports is trusted without checking. Paths are relative to /mnt/data
 * and already checked lexically (see resolveDataPath). Every call has a deadline and stops when its
 * `signal` aborts (a client that went away); a stalled helper is a DeadlineExceededError.
 */
export interface SandboxFiles {
  /** Streams `data` into the file, replacing it atomically once complete; nothing is left on failure. */
  write(
    sandbox: SandboxRef,
    path: string,
    data: Readable,
    options: { maxBytes: number; signal?: AbortSignal },
  ): Promise<{ bytes: number }>;
  /** A regular file's bytes, or null when there is none (missing, a symlink, a directory). */
  open(
    sandbox: SandboxRef,
    path: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ size: number; stream: Readable } | null>;
  /** Regular files under /mnt/data, symlinks skipped. */
  list(sandbox: SandboxRef, options?: { signal?: AbortSignal }): Promise<SandboxFileEntry[]>;
  /** Idempotent: a missing file is not an error. */
  remove(sandbox: SandboxRef, path: string, options?: { signal?: AbortSignal }): Promise<void>;
}
