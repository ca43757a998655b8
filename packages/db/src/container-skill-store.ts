import type { ContainerSkillInfo, ContainerSkillStore } from '@berth/core';
import { PgStore } from './sql.js';

interface Row {
  container_id: string;
  name: string;
  description: string;
  path: string;
}

/** The skills a container was created with; rows go with the container (on delete cascade). */
export class PgContainerSkillStore extends PgStore implements ContainerSkillStore {
  async save(containerId: string, skills: ContainerSkillInfo[]): Promise<void> {
    if (skills.length === 0) return;
    await this.sql.query(
      `insert into container_skills (container_id, position, name, description, path)
         select $1, s.ord - 1, s.name, s.description, s.path
           from unnest($2::text[], $3::text[], $4::text[]) with ordinality as s(name, description, path, ord)`,
      [
        containerId,
        skills.map((s) => s.name),
        skills.map((s) => s.description),
        skills.map((s) => s.path),
      ],
    );
  }

  async forContainers(containerIds: string[]): Promise<Map<string, ContainerSkillInfo[]>> {
    const { rows } = await this.sql.query<Row>(
      `select container_id, name, description, path from container_skills
          where container_id = any($1) order by container_id, position`,
      [containerIds],
    );
    const out = new Map<string, ContainerSkillInfo[]>();
    for (const r of rows) {
      const list = out.get(r.container_id) ?? [];
      list.push({ name: r.name, description: r.description, path: r.path });
      out.set(r.container_id, list);
    }
    return out;
  }
}
