import type { Readable } from 'node:stream';

/** Where Files API bytes live. The default is local disk; an S3-compatible store fits the same port. */
export interface BlobStore {
  /**
   * Stores the stream under `key`, visible only once complete. Past `maxBytes` it throws
   * PayloadTooLargeError and leaves nothing behind.
   */
  put(key: string, data: Readable, options: { maxBytes: number }): Promise<{ bytes: number }>;
  /** The bytes under `key`, or null when there are none. */
  open(key: string): Promise<{ size: number; stream: Readable } | null>;
  /** Idempotent. */
  delete(key: string): Promise<void>;
}
