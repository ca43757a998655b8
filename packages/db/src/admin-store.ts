import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type {
  AdminContainerFilter,
  AdminStore,
  AdminSummary,
  ContainerRecord,
  Page,
} from '@berth/core';
import { translated } from './errors.js';
import { keyset, toPage } from './keyset.js';
import { rowToContainer, type ContainerRow } from './container-rows.js';

const GIB = 1024 ** 3;
const DEADLINE = `last_active_at + expires_after_minutes * interval '1 minute'`;

/** Cross-project reads for operators, and admin keys (which belong to no project). */
export class PgAdminStore implements AdminStore {
  constructor(private readonly pool: pg.Pool) {}

  listContainers(filter: AdminContainerFilter): Promise<Page<ContainerRecord>> {
    return translated(async () => {
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
      if (filter.projectId !== undefined) {
        params.push(filter.projectId);
        where.push(`project_id = $${params.length}`);
      }
      if (filter.memoryLimit !== undefined) {
        params.push(filter.memoryLimit);
        where.push(`memory_limit = $${params.length}`);
      }
      const page = keyset(
        'container',
        { limit: filter.limit, order: 'desc', after: filter.after },
        params,
      );
      if (page.condition) where.push(page.condition);
      const { rows } = await this.pool.query<ContainerRow>(
        `select * from containers where ${where.join(' and ')} ${page.tail}`,
        params,
      );
      return toPage(rows, filter.limit, rowToContainer);
    });
  }

  summary(now: Date): Promise<AdminSummary> {
    return translated(async () => {
      const [statuses, projects, backlog] = await Promise.all([
        this.pool.query<{ status: string; n: number }>(
          `select case when status = 'running' and ${DEADLINE} <= $1 then 'expired' else status end
                  as status, count(*)::int as n
             from containers group by 1`,
          [now],
        ),
        this.pool.query<{ project_id: string; name: string | null; n: number; gib: number }>(
          `select c.project_id, p.name, count(*)::int as n,
                  sum(rtrim(c.memory_limit, 'g')::int)::int as gib
             from containers c left join projects p on p.id = c.project_id
            where c.status = 'running' and c.${DEADLINE} > $1
            group by c.project_id, p.name order by n desc, c.project_id limit 100`,
          [now],
        ),
        this.pool.query<{ n: number; oldest: Date | null }>(
          `select count(*)::int as n, min(${DEADLINE}) as oldest
             from containers where status = 'running' and ${DEADLINE} <= $1`,
          [now],
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
      return {
        byStatus,
        byProject,
        memoryCommittedBytes: byProject.reduce((sum, p) => sum + p.memoryBytes, 0),
        reaperBacklog: backlog.rows[0]?.n ?? 0,
        oldestOverdue: backlog.rows[0]?.oldest ?? null,
      };
    });
  }

  isAdminKey(hash: Buffer): Promise<boolean> {
    return translated(async () => {
      const { rows } = await this.pool.query(
        'select 1 from api_keys where hash = $1 and admin and revoked_at is null',
        [hash],
      );
      return rows.length > 0;
    });
  }

  createAdminKey(input: { name: string; prefix: string; hash: Buffer }): Promise<{ id: string }> {
    return translated(async () => {
      const id = `key_${randomBytes(12).toString('hex')}`;
      await this.pool.query(
        `insert into api_keys (id, project_id, name, prefix, hash, admin)
         values ($1, null, $2, $3, $4, true)`,
        [id, input.name, input.prefix, input.hash],
      );
      return { id };
    });
  }
}
