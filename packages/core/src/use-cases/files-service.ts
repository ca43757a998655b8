import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page, PageRequest } from '../pagination.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { FileRecord, FileStore } from '../ports/file-store.js';

export const FILE_PURPOSES = [
  'assistants',
  'batch',
  'fine-tune',
  'vision',
  'user_data',
  'evals',
] as const;

export interface FilesServiceOptions {
  files: FileStore;
  blobs: BlobStore;
  clock: Clock;
  maxBytes: number;
}

const notFound = (id: string) => new NotFoundError(`No such File object: ${id}`);

const MAX_NAME_BYTES = 255;
const hasControl = (name: string) =>
  [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/**
 * A stored file is later copied into containers as /mnt/data/<filename>, so its name must be one
 * a file system takes: no separators, no `.`/`..` (also percent-encoded, as the copy decodes it),
 * no NUL or other control characters, at most 255 bytes. Refused at upload, never rewritten.
 */
function fileNameProblem(filename: string): string | null {
  let decoded = filename;
  try {
    decoded = decodeURIComponent(filename);
  } catch {
    // Not percent-encoding after all (e.g. "100%.txt"): judged as written.
  }
  const forms = [filename, decoded];
  if (!filename) return 'it is empty';
  if (forms.some((n) => /[/\\]/.test(n))) return 'it must be a plain name, not a path';
  if (decoded === '.' || decoded === '..') return "'.' and '..' are not file names";
  // The copy into /mnt/data writes through a temporary of this prefix, and refuses it as a name.
  if (forms.some((n) => n.startsWith('.berth-upload-'))) return "'.berth-upload-' is reserved";
  if (forms.some(hasControl)) return 'NUL and control characters are not allowed';
  if (forms.some((n) => Buffer.byteLength(n) > MAX_NAME_BYTES)) {
    return `it is longer than ${MAX_NAME_BYTES} bytes`;
  }
  return null;
}

function checkFileName(filename: string): void {
  const problem = fileNameProblem(filename);
  if (problem) {
    const shown = JSON.stringify(filename.slice(0, 64));
    throw new InvalidRequestError(`Invalid file name ${shown}: ${problem}.`, { param: 'file' });
  }
}

/** The part of the Files API that `file_ids` needs: bytes in the blob store, rows in Postgres. */
export class FilesService {
  constructor(private readonly options: FilesServiceOptions) {}

  /** Stores the bytes first (the purpose may arrive after them in a multipart body), then the row. */
  async upload(
    projectId: string,
    filename: string,
    data: Readable,
  ): Promise<{ id: string; bytes: number; createdAt: number }> {
    checkFileName(filename);
    const now = this.options.clock.now();
    const createdAt = unixSeconds(now);
    const id = newId('file', now);
    const { bytes } = await this.options.blobs.put(id, data, { maxBytes: this.options.maxBytes });
    return { id, bytes, createdAt };
  }

  /** `expiresAfterSeconds` is upstream's `expires_after.seconds` (anchor `created_at`), validated. */
  async commit(
    projectId: string,
    stored: { id: string; bytes: number; createdAt: number },
    filename: string,
    purpose: string | undefined,
    expiresAfterSeconds: number | null = null,
  ): Promise<FileRecord> {
    if (!purpose || !(FILE_PURPOSES as readonly string[]).includes(purpose)) {
      await this.options.blobs.delete(stored.id);
      throw new InvalidRequestError(
        purpose
          ? `Invalid 'purpose': must be one of ${FILE_PURPOSES.join(', ')}.`
          : "Missing required parameter: 'purpose'.",
        { param: 'purpose' },
      );
    }
    const record: FileRecord = {
      id: stored.id,
      projectId,
      filename,
      purpose,
      bytes: stored.bytes,
      createdAt: stored.createdAt,
      expiresAt: expiresAfterSeconds === null ? null : stored.createdAt + expiresAfterSeconds,
    };
    try {
      await this.options.files.insert(record);
    } catch (error) {
      await this.options.blobs.delete(stored.id);
      throw error;
    }
    return record;
  }

  /** Drops bytes stored for an upload that was then refused. */
  async discard(id: string): Promise<void> {
    await this.options.blobs.delete(id);
  }

  async get(projectId: string, id: string): Promise<FileRecord> {
    if (!isId('file', id)) throw notFound(id);
    const record = await this.options.files.get(projectId, id, this.#now());
    if (!record) throw notFound(id);
    return record;
  }

  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
  ): Promise<Page<FileRecord>> {
    return this.options.files.list(projectId, filter, this.#now());
  }

  #now = () => unixSeconds(this.options.clock.now());

  async content(
    projectId: string,
    id: string,
  ): Promise<{ record: FileRecord; size: number; stream: Readable }> {
    const record = await this.get(projectId, id);
    const blob = await this.options.blobs.open(id);
    if (!blob) throw notFound(id);
    return { record, ...blob };
  }

  async delete(projectId: string, id: string): Promise<void> {
    await this.get(projectId, id);
    await this.options.files.delete(projectId, id);
    await this.options.blobs.delete(id);
  }
}
