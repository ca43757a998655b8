import type pg from 'pg';
import {
  type ContainerListFilter,
  type ContainerRecord,
  type ContainerStatus,
  type ContainerStore,
  type InsertOutcome,
  type Page,
} from '@berth/core';
import { translated } from './errors.js';
import { keyset, toPage } from './keyset.js';
import { policyToJson, rowToContainer, type ContainerRow } from './container-rows.js';

const VISIBLE = `status in ('running', 'expired', 'failed')`;

export class PgContainerStore implements ContainerStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * `now` decides which rows still count towards the cap (their deadline is after it); it is
   * a parameter so an injected clock governs it, not the record's own timestamps.
   */
  insertCreating(
    record: ContainerRecord,
    maxLive: number,
    now: Date = new Date(),
  ): Promise<InsertOutcome> {
    return translated(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        // Serialises creates per project so concurrent requests can't pass the cap together.
        await client.query(`select pg_advisory_xact_lock(hashtext('berth:project:' || $1))`, [
          record.projectId,
        ]);
        const { rows } = await client.query<{ n: number }>(
          `select count(*)::int as n from containers
            where project_id = $1 and status in ('creating', 'running')
              and last_active_at + expires_after_minutes * interval '1 minute' > $2`,
          [record.projectId, now],
        );
        if ((rows[0]?.n ?? 0) >= maxLive) {
          await client.query('rollback');
          return 'over_cap';
        }
        await client.query(
          `insert into containers (id, project_id, name, created_at, status, status_reason, last_active_at,
                                   expires_after_minutes, memory_limit, network_policy, sandbox_uid)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [
            record.id,
            record.projectId,
            record.name,
            record.createdAt,
            record.status,
            record.statusReason,
            record.lastActiveAt,
            record.expiresAfterMinutes,
            record.memoryLimit,
            policyToJson(record.networkPolicy),
            record.sandboxUid,
          ],
        );
        await client.query('commit');
        return 'inserted';
      } catch (error) {
        await client.query('rollback').catch(() => {});
        const e = error as { code?: string; constraint?: string };
        if (e.code === '23505' && e.constraint === 'containers_live_sandbox_uid')
          return 'uid_taken';
        throw error;
      } finally {
        client.release();
      }
    });
  }

  async markRunning(id: string): Promise<void> {
    await translated(() =>
      this.pool.query(
        `update containers set status = 'running', updated_at = now() where id = $1 and status = 'creating'`,
        [id],
      ),
    );
  }

  get(projectId: string, id: string): Promise<ContainerRecord | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<ContainerRow>(
        `select * from containers where id = $1 and project_id = $2 and ${VISIBLE}`,
        [id, projectId],
      );
      return rows[0] ? rowToContainer(rows[0]) : null;
    });
  }

  list(projectId: string, filter: ContainerListFilter): Promise<Page<ContainerRecord>> {
    // Inside `translated`'s async function, so a malformed `after` rejects instead of throwing.
    return translated(async () => {
      const params: unknown[] = [projectId];
      const where = [`project_id = $1`, VISIBLE];
      if (filter.name !== undefined) {
        params.push(filter.name);
        where.push(`name = $${params.length}`);
      }
      const { condition, tail } = keyset('container', filter, params);
      if (condition) where.push(condition);
      const { rows } = await this.pool.query<ContainerRow>(
        `select * from containers where ${where.join(' and ')} ${tail}`,
        params,
      );
      return toPage(rows, filter.limit, rowToContainer);
    });
  }

  markDeleting(projectId: string, id: string): Promise<ContainerRecord | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<ContainerRow>(
        `update containers c set status = 'deleting', updated_at = now()
           from (select id, status, status_reason from containers
                  where id = $1 and project_id = $2 and ${VISIBLE} for update) old
          where c.id = old.id
          returning c.id, c.project_id, c.name, c.created_at, old.status, old.status_reason, c.last_active_at,
                    c.expires_after_minutes, c.memory_limit, c.network_policy, c.sandbox_uid, c.pool_slot`,
        [id, projectId],
      );
      return rows[0] ? rowToContainer(rows[0]) : null;
    });
  }

  async remove(id: string): Promise<void> {
    await translated(() => this.pool.query('delete from containers where id = $1', [id]));
  }

  touch(id: string, at: Date): Promise<boolean> {
    return translated(async () => {
      const result = await this.pool.query(
        `update containers set last_active_at = greatest(last_active_at, $2) where id = $1 and status = 'running'`,
        [id, at],
      );
      return (result.rowCount ?? 0) > 0;
    });
  }

  async setStatus(
    id: string,
    status: ContainerStatus,
    reason: string | null = null,
  ): Promise<void> {
    await translated(() =>
      this.pool.query(
        `update containers set status = $2, status_reason = $3, updated_at = now() where id = $1`,
        [id, status, reason],
      ),
    );
  }

  listAbandoned(creatingBefore: Date): Promise<ContainerRecord[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<ContainerRow>(
        `select * from containers
          where (status = 'creating' and updated_at < $1)
             or status = 'deleting'
          order by updated_at limit 1000`,
        [creatingBefore],
      );
      return rows.map(rowToContainer);
    });
  }

  liveIds(ids: string[]): Promise<Set<string>> {
    return translated(async () => {
      const { rows } = await this.pool.query<{ id: string }>(
        `select id from containers where id = any($1) and status in ('creating', 'running', 'deleting')`,
        [ids],
      );
      return new Set(rows.map((r) => r.id));
    });
  }

  listRunning(limit: number, afterId?: string): Promise<ContainerRecord[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<ContainerRow>(
        `select * from containers where status = 'running' and ($2::text is null or id > $2) order by id limit $1`,
        [limit, afterId ?? null],
      );
      return rows.map(rowToContainer);
    });
  }
}
