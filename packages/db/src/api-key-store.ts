import { randomBytes } from 'node:crypto';
import type { ApiKeyRecord, ApiKeyStore } from '@berth/core';
import { PgStore } from './sql.js';

interface KeyRow {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}

const toRecord = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  prefix: r.prefix,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export class PgApiKeyStore extends PgStore implements ApiKeyStore {
  async findProjectByHash(hash: Buffer): Promise<string | null> {
    const row = await this.sql.one<{ project_id: string }>(
      'select project_id from api_keys where hash = $1 and revoked_at is null',
      [hash],
    );
    return row?.project_id ?? null;
  }

  async create(input: {
    projectId: string;
    name: string;
    prefix: string;
    hash: Buffer;
  }): Promise<ApiKeyRecord> {
    const row = await this.sql.one<KeyRow>(
      `insert into api_keys (id, project_id, name, prefix, hash) values ($1, $2, $3, $4, $5)
       returning id, project_id, name, prefix, created_at, revoked_at`,
      [
        `key_${randomBytes(12).toString('hex')}`,
        input.projectId,
        input.name,
        input.prefix,
        input.hash,
      ],
    );
    return toRecord(row!);
  }

  async list(projectId?: string): Promise<ApiKeyRecord[]> {
    const rows = await this.sql.rows<KeyRow>(
      `select id, project_id, name, prefix, created_at, revoked_at from api_keys
        where $1::text is null or project_id = $1 order by created_at, id`,
      [projectId ?? null],
    );
    return rows.map(toRecord);
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await this.sql.run(
      'update api_keys set revoked_at = now() where id = $1 and revoked_at is null',
      [id],
    );
    return revoked > 0;
  }

  async ensureProject(name: string): Promise<string> {
    // Race-safe upsert: the no-op update makes `returning` give the existing row too.
    const row = await this.sql.one<{ id: string }>(
      `insert into projects (id, name) values ($1, $2)
       on conflict (name) do update set name = excluded.name
       returning id`,
      [`proj_${randomBytes(12).toString('hex')}`, name],
    );
    return row!.id;
  }
}
