import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page, PageRequest } from '../pagination.js';
import { DATA_ROOT, resolveDataPath } from '../paths.js';
import type { ContainerFileRecord, ContainerFileStore } from '../ports/file-store.js';
import type { SandboxFiles, SandboxRef } from '../ports/sandbox-files.js';
import type { ContainerUse } from './container-access.js';
import type { ContainerSeeder } from './containers-service.js';
import type { FilesService } from './files-service.js';

export interface ContainerFilesServiceOptions {
  containers: ContainerUse;
  files: FilesService;
  store: ContainerFileStore;
  sandbox: SandboxFiles;
  clock: Clock;
  maxBytes: number;
  /**
   * Files kept after expiry: an expired container whose /mnt/data was archived stays listable and
   * downloadable, read-only. Absent: upstream's behaviour, every call answers `Container is expired.`
   */
  archive?: {
    open(containerId: string, fileId: string): Promise<{ size: number; stream: Readable } | null>;
    /** The per-container cap, for the message of a file past it. */
    maxBytes: number;
  };
}

const notFound = (id: string) => new NotFoundError(`No container file found with id '${id}'.`);
const relative = (absolute: string) => absolute.slice(DATA_ROOT.length + 1);
const ref = (c: ContainerRecord): SandboxRef => ({ containerId: sandboxKey(c), uid: c.sandboxUid });

/**
 * Files in a container's /mnt/data. Every operation is activity. The path of an upload is
 * /mnt/data/<original filename>, or under the optional `path`; uploading onto an existing path
 * replaces that file's bytes and keeps its id, so an id handed out earlier never starts to 404.
 */
export class ContainerFilesService {
  constructor(private readonly options: ContainerFilesServiceOptions) {}

  /**
   * Where an upload goes: under `path` (a file path, or a directory when it ends in `/`), else
   * /mnt/data/<filename>. A file name is a name, not a path: separators, `..` (also
   * percent-encoded), NUL and names over 255 bytes are refused, never silently rewritten.
   */
  static targetPath(filename: string, path?: string): string {
    let decoded = filename;
    try {
      decoded = decodeURIComponent(filename);
    } catch {
      // Not percent-encoding after all (e.g. "100%.txt"): judged as written.
    }
    if (
      !filename ||
      /[/\\\0]/.test(decoded) ||
      decoded === '.' ||
      decoded === '..' ||
      decoded.startsWith('.berth-upload-') ||
      Buffer.byteLength(filename) > 255
    ) {
      throw new InvalidRequestError(
        `Invalid file name '${filename.slice(0, 64)}': it must be a plain name, not a path.`,
        {
          param: 'file',
        },
      );
    }
    // Encoded so resolveDataPath's one decoding gives the name back exactly as it was.
    const name = encodeURIComponent(filename);
    if (path === undefined || path === '') return resolveDataPath(name, 'file');
    const base = resolveDataPath(path, 'path');
    const target =
      path.endsWith('/') || base === DATA_ROOT ? resolveDataPath(`${base}/${name}`, 'path') : base;
    if (target === DATA_ROOT)
      throw new InvalidRequestError("Invalid 'path': names a directory.", { param: 'path' });
    return target;
  }

  async #usable(projectId: string, containerId: string): Promise<ContainerRecord> {
    const record = await this.options.containers.getUsable(projectId, containerId);
    await this.options.containers.touch(record);
    return record;
  }

  /** A container whose files may be read: usable (and touched), or expired with an archive. */
  async #readable(
    projectId: string,
    containerId: string,
  ): Promise<{ container: ContainerRecord; archived: boolean }> {
    if (this.options.archive) {
      const record = await this.options.containers.get(projectId, containerId);
      if (record.status === 'expired' && record.archivedAt)
        return { container: record, archived: true };
    }
    return { container: await this.#usable(projectId, containerId), archived: false };
  }

  /** Writes a file into a container being created (a restore), keeping its source. */
  restoreFile(
    container: ContainerRecord,
    relativePath: string,
    data: Readable,
    source: 'user' | 'assistant',
  ): Promise<ContainerFileRecord> {
    return this.#write(container, `${DATA_ROOT}/${relativePath}`, data, source);
  }

  async #write(
    container: ContainerRecord,
    absolute: string,
    data: Readable,
    source: 'user' | 'assistant',
    signal?: AbortSignal,
  ): Promise<ContainerFileRecord> {
    const { bytes } = await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.write(ref(container), relative(absolute), data, {
        maxBytes: this.options.maxBytes,
        ...(signal ? { signal } : {}),
      }),
    );
    const now = this.options.clock.now();
    const createdAt = unixSeconds(now);
    return this.options.store.upsert({
      id: newId('containerFile', now),
      containerId: container.id,
      path: relative(absolute),
      bytes,
      source,
      createdAt,
    });
  }

  async upload(
    projectId: string,
    containerId: string,
    absolutePath: string,
    data: Readable,
    signal?: AbortSignal,
  ): Promise<ContainerFileRecord> {
    const container = await this.#usable(projectId, containerId);
    return this.#write(container, absolutePath, data, 'user', signal);
  }

  /** Copies a Files API file in, as /mnt/data/<its filename>. */
  async copyFile(
    projectId: string,
    container: ContainerRecord,
    fileId: string,
  ): Promise<ContainerFileRecord> {
    const { record, stream } = await this.options.files.content(projectId, fileId);
    return this.#write(
      container,
      ContainerFilesService.targetPath(record.filename),
      stream,
      'user',
    );
  }

  async uploadFromFile(
    projectId: string,
    containerId: string,
    fileId: string,
  ): Promise<ContainerFileRecord> {
    const container = await this.#usable(projectId, containerId);
    return this.copyFile(projectId, container, fileId);
  }

  /** These files as a create's seeder: unknown ids refused first, the rest copied in later. */
  seeder(): ContainerSeeder {
    return {
      check: (projectId, fileIds) => this.checkFileIds(projectId, fileIds),
      copy: async (projectId, container, fileIds) => {
        for (const id of fileIds) await this.copyFile(projectId, container, id);
      },
    };
  }

  /**
   * Validates `file_ids` before a container is created: each must be this project's file, and no
   * two may land on the same path (the later would silently replace the earlier).
   */
  async checkFileIds(projectId: string, fileIds: string[]): Promise<void> {
    const targets = new Map<string, number>();
    for (const [index, id] of fileIds.entries()) {
      let filename: string;
      try {
        filename = (await this.options.files.get(projectId, id)).filename;
      } catch (error) {
        if (error instanceof NotFoundError) {
          throw new InvalidRequestError(`No such File object: ${id}`, {
            param: `file_ids.${index}`,
          });
        }
        throw error;
      }
      const target = ContainerFilesService.targetPath(filename);
      const earlier = targets.get(target);
      if (earlier !== undefined) {
        throw new InvalidRequestError(
          fileIds[earlier] === id
            ? `Invalid 'file_ids.${index}': ${id} is already file_ids.${earlier} (copied to ${target}).`
            : `Invalid 'file_ids.${index}': ${id} would be copied to ${target}, as file_ids.${earlier} (${fileIds[earlier]}) is. Give the files different names.`,
          { param: `file_ids.${index}` },
        );
      }
      targets.set(target, index);
    }
  }

  /** Lists what /mnt/data holds now: one listing of the sandbox, synced into Postgres, then a page. */
  async list(
    projectId: string,
    containerId: string,
    page: PageRequest,
    signal?: AbortSignal,
  ): Promise<Page<ContainerFileRecord>> {
    if (page.after !== undefined && !isId('containerFile', page.after)) {
      throw new InvalidRequestError(
        `Invalid 'after': '${page.after}' is not a container file id.`,
        { param: 'after' },
      );
    }
    const { container, archived } = await this.#readable(projectId, containerId);
    // An archive is what it is: its rows are the listing.
    if (archived) return this.options.store.list(container.id, page);
    const listedAt = this.options.clock.now();
    const present = await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.list(ref(container), signal ? { signal } : {}),
    );
    // A file code wrote was created when it was written: its mtime, bounded by the listing's
    // time (a future mtime is the sandbox's claim, not a fact).
    await this.options.store.sync(container.id, present, listedAt, (entry) => {
      const at =
        entry.modifiedAt && entry.modifiedAt.getTime() <= listedAt.getTime()
          ? entry.modifiedAt
          : listedAt;
      return { id: newId('containerFile', at), createdAt: unixSeconds(at) };
    });
    return this.options.store.list(container.id, page);
  }

  async get(projectId: string, containerId: string, fileId: string): Promise<ContainerFileRecord> {
    return (await this.#find(projectId, containerId, fileId)).record;
  }

  async #find(
    projectId: string,
    containerId: string,
    fileId: string,
    mode: 'read' | 'write' = 'read',
  ): Promise<{ container: ContainerRecord; record: ContainerFileRecord; archived: boolean }> {
    const { container, archived } =
      mode === 'read'
        ? await this.#readable(projectId, containerId)
        : { container: await this.#usable(projectId, containerId), archived: false };
    if (!isId('containerFile', fileId)) throw notFound(fileId);
    const record = await this.options.store.get(container.id, fileId);
    if (!record) throw notFound(fileId);
    return { container, record, archived };
  }

  /** An archived file's bytes, or a 400 that says why the file was not kept. */
  async #archived(record: ContainerFileRecord): Promise<{ size: number; stream: Readable }> {
    const why: Record<string, string> = {
      over_cap: `it did not fit in the container's archive cap of ${this.options.archive!.maxBytes} bytes`,
      failed: 'it could not be read from the container when it expired',
      purged: 'its archive was purged at the end of the retention period',
    };
    const file =
      record.archiveState === 'archived'
        ? await this.options.archive!.open(record.containerId, record.id)
        : null;
    if (file) return file;
    throw new InvalidRequestError(
      `Container is expired and file '${record.id}' was not archived: ${why[record.archiveState ?? ''] ?? 'it was not archived'}.`,
      { code: 'file_not_archived' },
    );
  }

  async content(
    projectId: string,
    containerId: string,
    fileId: string,
    signal?: AbortSignal,
  ): Promise<{ record: ContainerFileRecord; size: number; stream: Readable }> {
    const { container, record, archived } = await this.#find(projectId, containerId, fileId);
    if (archived) return { record, ...(await this.#archived(record)) };
    const file = await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.open(ref(container), record.path, signal ? { signal } : {}),
    );
    if (!file) {
      // Gone, or replaced by something that is not a regular file: never followed, never served.
      await this.options.store.delete(record.containerId, record.id);
      throw notFound(fileId);
    }
    return { record, ...file };
  }

  async delete(projectId: string, containerId: string, fileId: string): Promise<void> {
    const { container, record } = await this.#find(projectId, containerId, fileId, 'write');
    await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.remove(ref(container), record.path),
    );
    await this.options.store.delete(record.containerId, record.id);
  }
}
