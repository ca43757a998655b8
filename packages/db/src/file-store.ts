import type { FileRecord, FileStore, Page, PageRequest } from '@berth/core';
import { PgStore } from './sql.js';

interface FileRow {
  id: string;
  project_id: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
}

const toRecord = (r: FileRow): FileRecord => ({
  id: r.id,
  projectId: r.project_id,
  filename: r.filename,
  purpose: r.purpose,
  bytes: Number(r.bytes),
  createdAt: Number(r.created_at),
});

export class PgFileStore extends PgStore implements FileStore {
  async insert(f: FileRecord): Promise<void> {
    await this.sql.run(
      'insert into files (id, project_id, filename, purpose, bytes, created_at) values ($1, $2, $3, $4, $5, $6)',
      [f.id, f.projectId, f.filename, f.purpose, f.bytes, f.createdAt],
    );
  }

  async get(projectId: string, id: string): Promise<FileRecord | null> {
    const row = await this.sql.one<FileRow>(
      'select * from files where id = $1 and project_id = $2',
      [id, projectId],
    );
    return row ? toRecord(row) : null;
  }

  list(
    projectId: string,
    filter: PageRequest & { purpose?: string | undefined },
  ): Promise<Page<FileRecord>> {
    return this.sql.listPage({
      from: 'files',
      kind: 'file',
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
}
