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
import type { ContainersService } from './containers-service.js';
import type { FilesService } from './files-service.js';

export interface ContainerFilesServiceOptions {
  containers: ContainersService;
  files: FilesService;
  store: ContainerFileStore;
  sandbox: SandboxFiles;
  clock: Clock;
  maxBytes: number;
}

const notFound = (id: string) => new NotFoundError(`No container file found with id '${id}'.`);
const relative = (absolute: string) => absolute.slice(DATA_ROOT.length + 1);
const ref = (c: ContainerRecord): SandboxRef => ({ containerId: sandboxKey(c), uid: c.sandboxUid });

/**
 * Files in a container's /mnt/data. Every operation is activity. The path of an upload is
 * /mnt/data/<original filename>, or under the optional `path`; uploading onto an existing path
 * replaces that file.
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
    const createdAt = unixSeconds(this.options.clock.now());
    return this.options.store.upsert({
      id: newId('containerFile', createdAt),
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

  /** Validates `file_ids` before a container is created: each must be this project's file. */
  async checkFileIds(projectId: string, fileIds: string[]): Promise<void> {
    for (const [index, id] of fileIds.entries()) {
      try {
        await this.options.files.get(projectId, id);
      } catch (error) {
        if (error instanceof NotFoundError) {
          throw new InvalidRequestError(`No such File object: ${id}`, {
            param: `file_ids.${index}`,
          });
        }
        throw error;
      }
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
    const container = await this.#usable(projectId, containerId);
    const listedAt = this.options.clock.now();
    const present = await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.list(ref(container), signal ? { signal } : {}),
    );
    await this.options.store.sync(container.id, present, listedAt, () => {
      const createdAt = unixSeconds(this.options.clock.now());
      return { id: newId('containerFile', createdAt), createdAt };
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
  ): Promise<{ container: ContainerRecord; record: ContainerFileRecord }> {
    const container = await this.#usable(projectId, containerId);
    if (!isId('containerFile', fileId)) throw notFound(fileId);
    const record = await this.options.store.get(container.id, fileId);
    if (!record) throw notFound(fileId);
    return { container, record };
  }

  async content(
    projectId: string,
    containerId: string,
    fileId: string,
    signal?: AbortSignal,
  ): Promise<{ record: ContainerFileRecord; size: number; stream: Readable }> {
    const { container, record } = await this.#find(projectId, containerId, fileId);
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
    const { container, record } = await this.#find(projectId, containerId, fileId);
    await this.options.containers.withSandbox(container, () =>
      this.options.sandbox.remove(ref(container), record.path),
    );
    await this.options.store.delete(record.containerId, record.id);
  }
}
