import type { ContainerRecord } from '../container.js';
import { InvalidRequestError } from '../errors.js';
import type { ArchiveStore } from '../ports/archive-store.js';
import type { ContainerArchiver } from './container-archiver.js';
import type { ContainerFilesService } from './container-files-service.js';
import type { ContainersService } from './containers-service.js';

export interface ContainerRestorerOptions {
  containers: ContainersService;
  containerFiles: ContainerFilesService;
  archiver: ContainerArchiver;
  archives: ArchiveStore;
}

/**
 * `POST /v1/containers/{id}/restore` (ours): a new running container with a new id and the
 * expired one's settings, whose /mnt/data is the archived one. The files are written before the
 * new container is shown as running; a failure undoes the whole create. The old one stays expired.
 */
export class ContainerRestorer {
  constructor(private readonly options: ContainerRestorerOptions) {}

  async restore(projectId: string, containerId: string): Promise<ContainerRecord> {
    const { containers, containerFiles, archiver, archives } = this.options;
    const old = await containers.get(projectId, containerId);
    if (old.status !== 'expired' || !old.archivedAt)
      throw new InvalidRequestError(
        old.status === 'expired'
          ? `Container '${old.id}' has no archive to restore (archiving was off or failed, or the reaper has not archived it yet).`
          : `Container '${old.id}' is ${old.status === 'failed' ? 'failed' : 'not expired'}; only an expired container with an archive can be restored.`,
        { code: 'no_archive' },
      );
    const kept = (await archives.filesOf(old.id)).filter((f) => f.archiveState === 'archived');
    return containers.create(projectId, {
      name: old.name,
      expiresAfterMinutes: old.expiresAfterMinutes,
      memoryLimit: old.memoryLimit,
      networkPolicy: old.networkPolicy,
      seed: async (container) => {
        for (const file of kept) {
          const blob = await archiver.open(old.id, file.id);
          if (!blob) throw new Error(`the archive of ${old.id} lost ${file.path}`);
          await containerFiles.restoreFile(container, file.path, blob.stream, file.source);
        }
      },
    });
  }
}
