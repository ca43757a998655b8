import type pg from 'pg';
import type {
  ArchiveState,
  ContainerFileRecord,
  ContainerFileSource,
  ContainerFileStore,
  Page,
  PageRequest,
} from '@berth/core';
import { translated } from './errors.js';
import { keyset, toPage } from './keyset.js';

interface Row {
  id: string;
  container_id: string;
  path: string;
  bytes: number;
  source: string;
  created_at: number;
  archive_state?: string | null;
}

const toRecord = (r: Row): ContainerFileRecord => ({
  id: r.id,
  containerId: r.container_id,
  path: r.path,
  bytes: Number(r.bytes),
  source: r.source as ContainerFileSource,
  createdAt: Number(r.created_at),
  archiveState: (r.archive_state ?? null) as ArchiveState | null,
});

export class PgContainerFileStore implements ContainerFileStore {
  constructor(private readonly pool: pg.Pool) {}

  upsert(f: ContainerFileRecord): Promise<ContainerFileRecord> {
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        `insert into container_files (id, container_id, path, bytes, source, created_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (container_id, path) do update
           set id = excluded.id, bytes = excluded.bytes, source = excluded.source,
               created_at = excluded.created_at, written_at = now()
         returning *`,
        [f.id, f.containerId, f.path, f.bytes, f.source, f.createdAt],
      );
      return toRecord(rows[0]!);
    });
  }

  get(containerId: string, id: string): Promise<ContainerFileRecord | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        'select * from container_files where id = $1 and container_id = $2',
        [id, containerId],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    });
  }

  list(containerId: string, page: PageRequest): Promise<Page<ContainerFileRecord>> {
    const params: unknown[] = [containerId];
    const where = ['container_id = $1'];
    const { condition, tail } = keyset('containerFile', page, params);
    if (condition) where.push(condition);
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        `select * from container_files where ${where.join(' and ')} ${tail}`,
        params,
      );
      return toPage(rows, page.limit, toRecord);
    });
  }

  async delete(containerId: string, id: string): Promise<void> {
    await translated(() =>
      this.pool.query('delete from container_files where id = $1 and container_id = $2', [
        id,
        containerId,
      ]),
    );
  }

  sync(
    containerId: string,
    present: { path: string; bytes: number }[],
    listedAt: Date,
    newId: () => { id: string; createdAt: number },
  ): Promise<void> {
    return translated(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        // One sync per container at a time; concurrent lists then see the same rows.
        await client.query(`select pg_advisory_xact_lock(hashtext('berth:files:' || $1))`, [
          containerId,
        ]);
        const paths = present.map((p) => p.path);
        await client.query(
          `delete from container_files
            where container_id = $1 and path <> all($2::text[]) and written_at < $3`,
          [containerId, paths, listedAt],
        );
        const ids = present.map(() => newId());
        await client.query(
          `insert into container_files (id, container_id, path, bytes, source, created_at)
           select t.id, $1, t.path, t.bytes, 'assistant', t.created_at
             from unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) as t(id, path, bytes, created_at)
           on conflict (container_id, path) do update set bytes = excluded.bytes, written_at = now()
             where container_files.bytes <> excluded.bytes`,
          [
            containerId,
            ids.map((i) => i.id),
            paths,
            present.map((p) => p.bytes),
            ids.map((i) => i.createdAt),
          ],
        );
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
  }
}
