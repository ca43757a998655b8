import { randomBytes } from 'node:crypto';
import type {
  AdminContainerFilter,
  AdminStore,
  AdminSummary,
  ContainerRecord,
  Page,
} from '@berth/core';
import { PgStore } from './sql.js';
import { rowToContainer, type ContainerRow } from './container-rows.js';

const GIB = 1024 ** 3;
const DEADLINE = `last_active_at + expires_after_minutes * interval '1 minute'`;

/** Cross-project reads for operators, and admin keys (which belong to no project). */
export class PgAdminStore extends PgStore implements AdminStore {
  listContainers(filter: AdminContainerFilter): Promise<Page<ContainerRecord>> {
    const params: unknown[] = [];
    const where: string[] = [];
    // A running row past its deadline reads as expired (as the project API shows it).
    if (filter.status === 'running' || filter.expiringWithinMinutes !== undefined) {
      params.push(filter.now);
      where.push(`status = 'running' and ${DEADLINE} > $${params.length}`);
    } else if (filter.status === 'expired') {
      params.push(filter.now);
      where.push(
        `(status = 'expired' or (status = 'running' and ${DEADLINE} <= $${params.length}))`,
      );
    } else if (filter.status === 'failed') {
      where.push(`status = 'failed'`);
    } else {
      where.push(`status in ('running', 'expired', 'failed')`);
    }
    if (filter.expiringWithinMinutes !== undefined) {
      params.push(filter.expiringWithinMinutes);
      where.push(`${DEADLINE} <= $1 + $${params.length} * interval '1 minute'`);
    }
    return this.sql.listPage({
      from: 'containers',
      kind: 'container',
      where,
      params,
      equal: { project_id: filter.projectId, memory_limit: filter.memoryLimit },
      page: { limit: filter.limit, order: 'desc', after: filter.after },
      map: (row: ContainerRow) => rowToContainer(row),
    });
  }

  async summary(now: Date): Promise<AdminSummary> {
    const [statuses, projects, backlog, pool] = await Promise.all([
      this.sql.query<{ status: string; n: number }>(
        `select case when status = 'running' and ${DEADLINE} <= $1 then 'expired' else status end
                  as status, count(*)::int as n
             from containers group by 1`,
        [now],
      ),
      this.sql.query<{
        project_id: string;
        name: string | null;
        n: number;
        gib: number;
        total_gib: number;
      }>(
        // The total over every project, not only the hundred listed (a window runs before limit).
        `select c.project_id, p.name, count(*)::int as n,
                  sum(rtrim(c.memory_limit, 'g')::int)::int as gib,
                  (sum(sum(rtrim(c.memory_limit, 'g')::int)) over ())::int as total_gib
             from containers c left join projects p on p.id = c.project_id
            where c.status = 'running' and c.${DEADLINE} > $1
            group by c.project_id, p.name order by n desc, c.project_id limit 100`,
        [now],
      ),
      this.sql.query<{ n: number; oldest: Date | null }>(
        `select count(*)::int as n, min(${DEADLINE}) as oldest
             from containers where status = 'running' and ${DEADLINE} <= $1`,
        [now],
      ),
      this.sql.query<{ memory_limit: string; state: string; n: number; gib: number }>(
        `select memory_limit, state, count(*)::int as n,
                  sum(rtrim(memory_limit, 'g')::int)::int as gib
             from pool_sandboxes group by 1, 2 order by 1, 2`,
      ),
    ]);
    const byStatus: Record<string, number> = {
      creating: 0,
      running: 0,
      expired: 0,
      deleting: 0,
      failed: 0,
    };
    for (const r of statuses.rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + r.n;
    const byProject = projects.rows.map((r) => ({
      projectId: r.project_id,
      projectName: r.name ?? r.project_id,
      running: r.n,
      memoryBytes: r.gib * GIB,
    }));
    const poolCommittedBytes = pool.rows.reduce((sum, r) => sum + r.gib * GIB, 0);
    return {
      byStatus,
      byProject,
      memoryCommittedBytes: (projects.rows[0]?.total_gib ?? 0) * GIB + poolCommittedBytes,
      poolCommittedBytes,
      pool: pool.rows.map((r) => ({ memoryLimit: r.memory_limit, state: r.state, count: r.n })),
      reaperBacklog: backlog.rows[0]?.n ?? 0,
      oldestOverdue: backlog.rows[0]?.oldest ?? null,
    };
  }

  async isAdminKey(hash: Buffer): Promise<boolean> {
    const row = await this.sql.one(
      'select 1 from api_keys where hash = $1 and admin and revoked_at is null',
      [hash],
    );
    return row !== null;
  }

  async createAdminKey(input: {
    name: string;
    prefix: string;
    hash: Buffer;
  }): Promise<{ id: string }> {
    const id = `key_${randomBytes(12).toString('hex')}`;
    await this.sql.run(
      `insert into api_keys (id, project_id, name, prefix, hash, admin)
       values ($1, null, $2, $3, $4, true)`,
      [id, input.name, input.prefix, input.hash],
    );
    return { id };
  }
}
