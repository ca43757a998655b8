import type {
  ArchiveState,
  ContainerFileRecord,
  ContainerFileSource,
  ContainerFileStore,
  Page,
  PageRequest,
} from '@berth/core';
import { PgStore } from './sql.js';

/** A container_files row, as every store that reads it parses it. */
export interface ContainerFileRow {
  id: string;
  container_id: string;
  path: string;
  bytes: number;
  source: string;
  created_at: number;
  archive_state?: string | null;
}

export const rowToContainerFile = (r: ContainerFileRow): ContainerFileRecord => ({
  id: r.id,
  containerId: r.container_id,
  path: r.path,
  bytes: Number(r.bytes),
  source: r.source as ContainerFileSource,
  createdAt: Number(r.created_at),
  archiveState: (r.archive_state ?? null) as ArchiveState | null,
});

/**
 * Container files in Postgres. `written_at`, which `sync` compares with the service's listing
 * time, comes from the same injected clock as that time.
 */
export class PgContainerFileStore extends PgStore implements ContainerFileStore {
  /**
   * A path keeps the id (and created_at) it was first given: writing onto it again replaces the
   * bytes, so an id a client holds still answers, with the new content.
   */
  async upsert(f: ContainerFileRecord): Promise<ContainerFileRecord> {
    const row = await this.sql.one<ContainerFileRow>(
      `insert into container_files (id, container_id, path, bytes, source, created_at, written_at)
       values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (container_id, path) do update
         set bytes = excluded.bytes, source = excluded.source, written_at = excluded.written_at
       returning *`,
      [f.id, f.containerId, f.path, f.bytes, f.source, f.createdAt, this.clock.now()],
    );
    return rowToContainerFile(row!);
  }

  async get(containerId: string, id: string): Promise<ContainerFileRecord | null> {
    const row = await this.sql.one<ContainerFileRow>(
      'select * from container_files where id = $1 and container_id = $2',
      [id, containerId],
    );
    return row ? rowToContainerFile(row) : null;
  }

  list(containerId: string, page: PageRequest): Promise<Page<ContainerFileRecord>> {
    return this.sql.listPage({
      from: 'container_files',
      kind: 'containerFile',
      equal: { container_id: containerId },
      page,
      map: rowToContainerFile,
    });
  }

  async delete(containerId: string, id: string): Promise<void> {
    await this.sql.run('delete from container_files where id = $1 and container_id = $2', [
      id,
      containerId,
    ]);
  }

  sync<E extends { path: string; bytes: number }>(
    containerId: string,
    present: E[],
    listedAt: Date,
    newId: (entry: E) => { id: string; createdAt: number },
  ): Promise<void> {
    return this.sql.transaction(async (tx) => {
      // One sync per container at a time; concurrent lists then see the same rows.
      await tx.query(`select pg_advisory_xact_lock(hashtext('berth:files:' || $1))`, [containerId]);
      const paths = present.map((p) => p.path);
      await tx.query(
        `delete from container_files
          where container_id = $1 and path <> all($2::text[]) and written_at < $3`,
        [containerId, paths, listedAt],
      );
      const ids = present.map((entry) => newId(entry));
      await tx.query(
        `insert into container_files (id, container_id, path, bytes, source, created_at, written_at)
         select t.id, $1, t.path, t.bytes, 'assistant', t.created_at, $6
           from unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) as t(id, path, bytes, created_at)
         on conflict (container_id, path) do update set bytes = excluded.bytes, written_at = excluded.written_at
           where container_files.bytes <> excluded.bytes`,
        [
          containerId,
          ids.map((i) => i.id),
          paths,
          present.map((p) => p.bytes),
          ids.map((i) => i.createdAt),
          this.clock.now(),
        ],
      );
    });
  }
}
