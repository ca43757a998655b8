import type {
  NewSkillVersion,
  Page,
  PageRequest,
  SkillRecord,
  SkillStore,
  SkillVersionRecord,
} from '@berth/core';
import { PgStore } from './sql.js';
import { toPage } from './keyset.js';

interface SkillRow {
  id: string;
  project_id: string;
  name: string;
  description: string;
  created_at: number;
  default_version: number;
  latest_version: number;
}

interface VersionRow {
  id: string;
  skill_id: string;
  version: number;
  name: string;
  description: string;
  created_at: number;
  bytes: number;
  blob_key: string;
}

const toSkill = (r: SkillRow): SkillRecord => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  description: r.description,
  createdAt: Number(r.created_at),
  defaultVersion: r.default_version,
  latestVersion: r.latest_version,
});

const toVersion = (r: VersionRow): SkillVersionRecord => ({
  id: r.id,
  skillId: r.skill_id,
  version: r.version,
  name: r.name,
  description: r.description,
  createdAt: Number(r.created_at),
  bytes: Number(r.bytes),
  blobKey: r.blob_key,
});

const INSERT_VERSION = `insert into skill_versions (id, skill_id, version, name, description, created_at, bytes, blob_key)
  values ($1, $2, $3, $4, $5, $6, $7, $8)`;

/** A skill's versions, reachable only through a skill of the project. */
const OWNED = `skill_id = $1 and exists (select 1 from skills s where s.id = $1 and s.project_id = $2)`;

export class PgSkillStore extends PgStore implements SkillStore {
  create(s: SkillRecord, v: SkillVersionRecord): Promise<void> {
    return this.sql.transaction(async (c) => {
      await c.query(
        `insert into skills (id, project_id, name, description, created_at, default_version, latest_version, last_version)
         values ($1, $2, $3, $4, $5, $6, $7, $7)`,
        [s.id, s.projectId, s.name, s.description, s.createdAt, s.defaultVersion, s.latestVersion],
      );
      await c.query(INSERT_VERSION, [
        v.id,
        v.skillId,
        v.version,
        v.name,
        v.description,
        v.createdAt,
        v.bytes,
        v.blobKey,
      ]);
    });
  }

  async get(projectId: string, id: string): Promise<SkillRecord | null> {
    const row = await this.sql.one<SkillRow>(
      'select * from skills where id = $1 and project_id = $2',
      [id, projectId],
    );
    return row ? toSkill(row) : null;
  }

  list(projectId: string, page: PageRequest): Promise<Page<SkillRecord>> {
    return this.sql.listPage({
      from: 'skills',
      kind: 'skill',
      equal: { project_id: projectId },
      page,
      map: toSkill,
    });
  }

  addVersion(
    projectId: string,
    skillId: string,
    v: NewSkillVersion,
    idFor: (version: number) => string,
    makeDefault: boolean,
  ): Promise<SkillVersionRecord | null> {
    return this.sql.transaction(async (c) => {
      // The row lock orders concurrent creates: each gets the next number.
      const { rows } = await c.query<{ last_version: number }>(
        `update skills set last_version = last_version + 1, latest_version = last_version + 1
          where id = $1 and project_id = $2 returning last_version`,
        [skillId, projectId],
      );
      const version = rows[0]?.last_version;
      if (version === undefined) return null;
      const record: SkillVersionRecord = { ...v, id: idFor(version), skillId, version };
      await c.query(INSERT_VERSION, [
        record.id,
        skillId,
        version,
        v.name,
        v.description,
        v.createdAt,
        v.bytes,
        v.blobKey,
      ]);
      if (makeDefault)
        await c.query(
          'update skills set default_version = $2, name = $3, description = $4 where id = $1',
          [skillId, version, v.name, v.description],
        );
      return record;
    });
  }

  async setDefault(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillRecord | 'no_version' | null> {
    const { rows } = await this.sql.query<SkillRow>(
      `update skills s set default_version = v.version, name = v.name, description = v.description
           from skill_versions v
          where s.id = $1 and s.project_id = $2 and v.skill_id = s.id and v.version = $3
          returning s.*`,
      [skillId, projectId, version],
    );
    if (rows[0]) return toSkill(rows[0]);
    return (await this.get(projectId, skillId)) ? 'no_version' : null;
  }

  delete(projectId: string, id: string): Promise<string[] | null> {
    return this.sql.transaction(async (c) => {
      const { rows } = await c.query<{ blob_key: string }>(
        `select v.blob_key from skill_versions v join skills s on s.id = v.skill_id
          where s.id = $1 and s.project_id = $2`,
        [id, projectId],
      );
      const result = await c.query('delete from skills where id = $1 and project_id = $2', [
        id,
        projectId,
      ]);
      return (result.rowCount ?? 0) > 0 ? rows.map((r) => r.blob_key) : null;
    });
  }

  async getVersion(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillVersionRecord | null> {
    const row = await this.sql.one<VersionRow>(
      `select * from skill_versions where ${OWNED} and version = $3`,
      [skillId, projectId, version],
    );
    return row ? toVersion(row) : null;
  }

  async listVersions(
    projectId: string,
    skillId: string,
    page: PageRequest & { afterVersion?: number },
  ): Promise<Page<SkillVersionRecord>> {
    const params: unknown[] = [skillId, projectId];
    const where = [OWNED];
    if (page.afterVersion !== undefined) {
      params.push(page.afterVersion);
      where.push(`version ${page.order === 'asc' ? '>' : '<'} $${params.length}`);
    }
    params.push(page.limit + 1);

    const { rows } = await this.sql.query<VersionRow>(
      `select * from skill_versions where ${where.join(' and ')}
          order by version ${page.order === 'asc' ? 'asc' : 'desc'} limit $${params.length}`,
      params,
    );
    return toPage(rows, page.limit, toVersion);
  }

  deleteVersion(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillVersionRecord | 'is_default' | null> {
    return this.sql.transaction(async (c) => {
      const { rows: skills } = await c.query<{ default_version: number }>(
        'select default_version from skills where id = $1 and project_id = $2 for update',
        [skillId, projectId],
      );
      const skill = skills[0];
      if (!skill) return null;
      if (skill.default_version === version) return 'is_default';
      const { rows } = await c.query<VersionRow>(
        'delete from skill_versions where skill_id = $1 and version = $2 returning *',
        [skillId, version],
      );
      if (!rows[0]) return null;
      // The latest is the newest version that remains (the default always does).
      await c.query(
        `update skills set latest_version = (select max(version) from skill_versions where skill_id = $1)
          where id = $1`,
        [skillId],
      );
      return toVersion(rows[0]);
    });
  }
}
