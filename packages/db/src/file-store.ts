import type pg from 'pg';
import type { FileRecord, FileStore, Page, PageRequest } from '@berth/core';
import { translated } from './errors.js';
import { keyset, toPage } from './keyset.js';

interface FileRow {
  id: string;
  project_id: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
  expires_at: number | null;
}

const toRecord = (r: FileRow): FileRecord => ({
  id: r.id,
  projectId: r.project_id,
  filename: r.filename,
  purpose: r.purpose,
  bytes: Number(r.bytes),
  createdAt: Number(r.created_at),
  expiresAt: r.expires_at === null ? null : Number(r.expires_at),
});

/** A file is there until its deadline (`$n` is now, unix seconds). */
const LIVE = (n: number) => `(expires_at is null or expires_at > $${n})`;

export class PgFileStore implements FileStore {
  constructor(private readonly pool: pg.Pool) {}

  async insert(f: FileRecord): Promise<void> {
    await translated(() =>
      this.pool.query(
        `insert into files (id, project_id, filename, purpose, bytes, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)`,
        [f.id, f.projectId, f.filename, f.purpose, f.bytes, f.createdAt, f.expiresAt],
      ),
    );
  }

  get(projectId: string, id: string, now: number): Promise<FileRecord | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<FileRow>(
        `select * from files where id = $1 and project_id = $2 and ${LIVE(3)}`,
        [id, projectId, now],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    });
  }

  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
    now: number,
  ): Promise<Page<FileRecord>> {
    const params: unknown[] = [projectId, now];
    const where = ['project_id = $1', LIVE(2)];
    if (filter.purpose !== undefined) {
      params.push(filter.purpose);
      where.push(`purpose = $${params.length}`);
    }
    const { condition, tail } = keyset('file', filter, params);
    if (condition) where.push(condition);
    return translated(async () => {
      const { rows } = await this.pool.query<FileRow>(
        `select * from files where ${where.join(' and ')} ${tail}`,
        params,
      );
      return toPage(rows, filter.limit, toRecord);
    });
  }

  delete(projectId: string, id: string): Promise<boolean> {
    return translated(async () => {
      const result = await this.pool.query('delete from files where id = $1 and project_id = $2', [
        id,
        projectId,
      ]);
      return (result.rowCount ?? 0) > 0;
    });
  }

  listExpired(now: number, limit: number): Promise<{ id: string; projectId: string }[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<{ id: string; project_id: string }>(
        `select id, project_id from files where expires_at <= $1 order by expires_at limit $2`,
        [now, limit],
      );
      return rows.map((r) => ({ id: r.id, projectId: r.project_id }));
    });
  }
}
