import type { ArchiveState, ArchiveStore, ContainerFileRecord } from '@berth/core';
import { rowToContainerFile, type ContainerFileRow } from './container-file-store.js';
import { PgStore } from './sql.js';

export class PgArchiveStore extends PgStore implements ArchiveStore {
  async filesOf(containerId: string): Promise<ContainerFileRecord[]> {
    const rows = await this.sql.rows<ContainerFileRow>(
      'select * from container_files where container_id = $1 order by created_at, id',
      [containerId],
    );
    return rows.map(rowToContainerFile);
  }

  async setFileState(containerId: string, fileId: string, state: ArchiveState): Promise<void> {
    await this.sql.query(
      'update container_files set archive_state = $3 where id = $2 and container_id = $1',
      [containerId, fileId, state],
    );
  }

  async purgeable(before: Date, limit: number): Promise<{ containerId: string; fileId: string }[]> {
    const { rows } = await this.sql.query<{ container_id: string; id: string }>(
      `select f.container_id, f.id from container_files f
           join containers c on c.id = f.container_id
          where f.archive_state = 'archived'
            and c.status in ('expired', 'failed') and c.updated_at < $1
          limit $2`,
      [before, limit],
    );
    return rows.map((r) => ({ containerId: r.container_id, fileId: r.id }));
  }

  async archivedOf(containerId: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ id: string }>(
      `select id from container_files where container_id = $1 and archive_state = 'archived'`,
      [containerId],
    );
    return rows.map((r) => r.id);
  }
}
