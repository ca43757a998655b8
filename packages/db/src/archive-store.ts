import type pg from 'pg';
import type { ArchiveState, ArchiveStore, ContainerFileRecord } from '@berth/core';
import { translated } from './errors.js';

interface Row {
  id: string;
  container_id: string;
  path: string;
  bytes: number;
  source: string;
  created_at: number;
  archive_state: string | null;
}

export class PgArchiveStore implements ArchiveStore {
  constructor(private readonly pool: pg.Pool) {}

  filesOf(containerId: string): Promise<ContainerFileRecord[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        'select * from container_files where container_id = $1 order by created_at, id',
        [containerId],
      );
      return rows.map((r) => ({
        id: r.id,
        containerId: r.container_id,
        path: r.path,
        bytes: Number(r.bytes),
        source: r.source === 'user' ? 'user' : 'assistant',
        createdAt: Number(r.created_at),
        archiveState: r.archive_state as ArchiveState | null,
      }));
    });
  }

  async setFileState(containerId: string, fileId: string, state: ArchiveState): Promise<void> {
    await translated(() =>
      this.pool.query(
        'update container_files set archive_state = $3 where id = $2 and container_id = $1',
        [containerId, fileId, state],
      ),
    );
  }

  purgeable(before: Date, limit: number): Promise<{ containerId: string; fileId: string }[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<{ container_id: string; id: string }>(
        `select f.container_id, f.id from container_files f
           join containers c on c.id = f.container_id
          where f.archive_state = 'archived'
            and c.status in ('expired', 'failed') and c.updated_at < $1
          limit $2`,
        [before, limit],
      );
      return rows.map((r) => ({ containerId: r.container_id, fileId: r.id }));
    });
  }

  archivedOf(containerId: string): Promise<string[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<{ id: string }>(
        `select id from container_files where container_id = $1 and archive_state = 'archived'`,
        [containerId],
      );
      return rows.map((r) => r.id);
    });
  }
}
