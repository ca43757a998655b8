import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ApiKeyRecord, ApiKeyStore } from '@berth/core';
import { translated } from './errors.js';

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

export class PgApiKeyStore implements ApiKeyStore {
  constructor(private readonly pool: pg.Pool) {}

  findProjectByHash(hash: Buffer): Promise<string | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<{ project_id: string }>(
        'select project_id from api_keys where hash = $1 and revoked_at is null',
        [hash],
      );
      return rows[0]?.project_id ?? null;
    });
  }

  create(input: {
    projectId: string;
    name: string;
    prefix: string;
    hash: Buffer;
  }): Promise<ApiKeyRecord> {
    return translated(async () => {
      const { rows } = await this.pool.query<KeyRow>(
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
      return toRecord(rows[0]!);
    });
  }

  list(projectId?: string): Promise<ApiKeyRecord[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<KeyRow>(
        `select id, project_id, name, prefix, created_at, revoked_at from api_keys
          where $1::text is null or project_id = $1 order by created_at, id`,
        [projectId ?? null],
      );
      return rows.map(toRecord);
    });
  }

  revoke(id: string): Promise<boolean> {
    return translated(async () => {
      const result = await this.pool.query(
        'update api_keys set revoked_at = now() where id = $1 and revoked_at is null',
        [id],
      );
      return (result.rowCount ?? 0) > 0;
    });
  }

  ensureProject(name: string): Promise<string> {
    return translated(async () => {
      // Race-safe upsert: the no-op update makes `returning` give the existing row too.
      const { rows } = await this.pool.query<{ id: string }>(
        `insert into projects (id, name) values ($1, $2)
         on conflict (name) do update set name = excluded.name
         returning id`,
        [`proj_${randomBytes(12).toString('hex')}`, name],
      );
      return rows[0]!.id;
    });
  }
}
