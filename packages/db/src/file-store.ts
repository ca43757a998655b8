import type { FileRecord, FileStore, Page, PageRequest } from '@berth/core';
import { PgStore } from './sql.js';

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

export class PgFileStore extends PgStore implements FileStore {
  async insert(f: FileRecord): Promise<void> {
    await this.sql.run(
      `insert into files (id, project_id, filename, purpose, bytes, created_at, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7)`,
      [f.id, f.projectId, f.filename, f.purpose, f.bytes, f.createdAt, f.expiresAt],
    );
  }

  async get(projectId: string, id: string, now: number): Promise<FileRecord | null> {
    const row = await this.sql.one<FileRow>(
      `select * from files where id = $1 and project_id = $2 and ${LIVE(3)}`,
      [id, projectId, now],
    );
    return row ? toRecord(row) : null;
  }

  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
    now: number,
  ): Promise<Page<FileRecord>> {
    return this.sql.listPage({
      from: 'files',
      kind: 'file',
      where: [LIVE(1)],
      params: [now],
      equal: { project_id: projectId, purpose: filter.purpose },
      page: filter,
      map: toRecord,
    });
  }

  async delete(projectId: string, id: string): Promise<boolean> {
    const deleted = await this.sql.run('delete from files where id = $1 and project_id = $2', [
      id,
      projectId,
    ]);
    return deleted > 0;
  }

  async listExpired(now: number, limit: number): Promise<{ id: string; projectId: string }[]> {
    const rows = await this.sql.rows<{ id: string; project_id: string }>(
      `select id, project_id from files where expires_at <= $1 order by expires_at limit $2`,
      [now, limit],
    );
    return rows.map((r) => ({ id: r.id, projectId: r.project_id }));
  }
}
