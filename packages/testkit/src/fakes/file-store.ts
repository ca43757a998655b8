import { Readable } from 'node:stream';
import {
  PayloadTooLargeError,
  type BlobStore,
  type FileRecord,
  type FileStore,
  type Page,
  type PageRequest,
} from '@berth/core';
import type { Hooks } from './hooks.js';

const byKey = (a: FileRecord, b: FileRecord) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const live = (r: FileRecord, now: number) => r.expiresAt === null || r.expiresAt > now;

/**
 * The files table in memory, with the store's contract: reads take `now` and a file whose
 * `expiresAt` is not after it is not there; keyset pages by (created_at, id).
 */
export class FakeFileStore implements FileStore {
  readonly #rows = new Map<string, FileRecord>();
  hooks: Hooks<FileStore> = {};

  /** The rows as stored, expired ones included. */
  get rows(): FileRecord[] {
    return [...this.#rows.values()].map((r) => ({ ...r }));
  }

  async insert(record: FileRecord): Promise<void> {
    await this.hooks.insert?.(record);
    if (this.#rows.has(record.id)) throw new Error(`duplicate file id ${record.id}`);
    this.#rows.set(record.id, { ...record });
  }

  async get(projectId: string, id: string, now: number): Promise<FileRecord | null> {
    await this.hooks.get?.(projectId, id, now);
    const r = this.#rows.get(id);
    return r && r.projectId === projectId && live(r, now) ? { ...r } : null;
  }

  async list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
    now: number,
  ): Promise<Page<FileRecord>> {
    await this.hooks.list?.(projectId, filter, now);
    const sign = filter.order === 'asc' ? 1 : -1;
    const cursor = filter.after === undefined ? undefined : this.#rows.get(filter.after);
    const rows = [...this.#rows.values()]
      .filter((r) => r.projectId === projectId && live(r, now))
      .filter((r) => filter.purpose === undefined || r.purpose === filter.purpose)
      .filter((r) => !cursor || sign * byKey(r, cursor) > 0)
      .sort((a, b) => sign * byKey(a, b));
    return {
      items: rows.slice(0, filter.limit).map((r) => ({ ...r })),
      hasMore: rows.length > filter.limit,
    };
  }

  async delete(projectId: string, id: string): Promise<boolean> {
    await this.hooks.delete?.(projectId, id);
    const r = this.#rows.get(id);
    if (!r || r.projectId !== projectId) return false;
    return this.#rows.delete(id);
  }

  async listExpired(now: number, limit: number): Promise<{ id: string; projectId: string }[]> {
    await this.hooks.listExpired?.(now, limit);
    return [...this.#rows.values()]
      .filter((r) => !live(r, now))
      .sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0))
      .slice(0, limit)
      .map(({ id, projectId }) => ({ id, projectId }));
  }
}

/** Blobs in memory: complete or absent, never partial, as the port says. */
export class FakeBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  hooks: Hooks<BlobStore> = {};

  async put(
    key: string,
    data: Readable,
    options: { maxBytes: number },
  ): Promise<{ bytes: number }> {
    await this.hooks.put?.(key, data, options);
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of data) {
      bytes += (chunk as Buffer).length;
      if (bytes > options.maxBytes) {
        data.destroy();
        throw new PayloadTooLargeError(`The file is larger than ${options.maxBytes} bytes.`);
      }
      chunks.push(chunk as Buffer);
    }
    this.blobs.set(key, Buffer.concat(chunks));
    return { bytes };
  }

  async open(key: string): Promise<{ size: number; stream: Readable } | null> {
    await this.hooks.open?.(key);
    const blob = this.blobs.get(key);
    return blob ? { size: blob.length, stream: Readable.from([blob]) } : null;
  }

  async delete(key: string): Promise<void> {
    await this.hooks.delete?.(key);
    this.blobs.delete(key);
  }
}
