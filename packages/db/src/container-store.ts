import {
  type ContainerListFilter,
  type ContainerRecord,
  type ContainerStatus,
  type ContainerStore,
  type InsertOutcome,
  type Page,
} from '@berth/core';
import { PgStore, isUniqueViolation } from './sql.js';
import { policyToJson, rowToContainer, type ContainerRow } from './container-rows.js';

const VISIBLE = `status in ('running', 'expired', 'failed')`;

/**
 * Containers in Postgres. `updated_at`, which the reconciler and the purge compare with the
 * service's clock, is written from that same injected clock, never the database's `now()`.
 */
export class PgContainerStore extends PgStore implements ContainerStore {
  /**
   * `now` decides which rows still count towards the cap (their deadline is after it); it is
   * a parameter so an injected clock governs it, not the record's own timestamps.
   */
  async insertCreating(
    record: ContainerRecord,
    maxLive: number,
    now: Date = this.clock.now(),
  ): Promise<InsertOutcome> {
    try {
      return await this.sql.transaction(async (tx) => {
        // Serialises creates per project so concurrent requests can't pass the cap together.
        await tx.query(`select pg_advisory_xact_lock(hashtext('berth:project:' || $1))`, [
          record.projectId,
        ]);
        const live = await tx.one<{ n: number }>(
          `select count(*)::int as n from containers
            where project_id = $1 and status in ('creating', 'running')
              and last_active_at + expires_after_minutes * interval '1 minute' > $2`,
          [record.projectId, now],
        );
        if ((live?.n ?? 0) >= maxLive) return 'over_cap';
        await tx.query(
          `insert into containers (id, project_id, name, created_at, status, status_reason, last_active_at,
                                   expires_after_minutes, memory_limit, network_policy, sandbox_uid, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
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
            this.clock.now(),
          ],
        );
        return 'inserted';
      });
    } catch (error) {
      if (isUniqueViolation(error, 'containers_live_sandbox_uid')) return 'uid_taken';
      throw error;
    }
  }

  async markRunning(id: string): Promise<void> {
    await this.sql.run(
      `update containers set status = 'running', updated_at = $2 where id = $1 and status = 'creating'`,
      [id, this.clock.now()],
    );
  }

  async get(projectId: string, id: string): Promise<ContainerRecord | null> {
    const row = await this.sql.one<ContainerRow>(
      `select * from containers where id = $1 and project_id = $2 and ${VISIBLE}`,
      [id, projectId],
    );
    return row ? rowToContainer(row) : null;
  }

  list(projectId: string, filter: ContainerListFilter): Promise<Page<ContainerRecord>> {
    return this.sql.listPage({
      from: 'containers',
      kind: 'container',
      equal: { project_id: projectId, name: filter.name },
      where: [VISIBLE],
      page: filter,
      map: rowToContainer,
    });
  }

  async markDeleting(projectId: string, id: string): Promise<ContainerRecord | null> {
    const row = await this.sql.one<ContainerRow>(
      `update containers c set status = 'deleting', updated_at = $3
         from (select id, status, status_reason from containers
                where id = $1 and project_id = $2 and ${VISIBLE} for update) old
        where c.id = old.id
        returning c.id, c.project_id, c.name, c.created_at, old.status, old.status_reason, c.last_active_at,
                  c.expires_after_minutes, c.memory_limit, c.network_policy, c.sandbox_uid, c.pool_slot`,
      [id, projectId, this.clock.now()],
    );
    return row ? rowToContainer(row) : null;
  }

  async remove(id: string): Promise<void> {
    await this.sql.run('delete from containers where id = $1', [id]);
  }

  async touch(id: string, at: Date): Promise<boolean> {
    const changed = await this.sql.run(
      `update containers set last_active_at = greatest(last_active_at, $2) where id = $1 and status = 'running'`,
      [id, at],
    );
    return changed > 0;
  }

  async setStatus(
    id: string,
    status: ContainerStatus,
    reason: string | null = null,
  ): Promise<void> {
    await this.sql.run(
      `update containers set status = $2, status_reason = $3, updated_at = $4 where id = $1`,
      [id, status, reason, this.clock.now()],
    );
  }

  async listAbandoned(creatingBefore: Date): Promise<ContainerRecord[]> {
    const rows = await this.sql.rows<ContainerRow>(
      `select * from containers
        where (status = 'creating' and updated_at < $1)
           or status = 'deleting'
        order by updated_at limit 1000`,
      [creatingBefore],
    );
    return rows.map(rowToContainer);
  }

  async liveIds(ids: string[]): Promise<Set<string>> {
    const rows = await this.sql.rows<{ id: string }>(
      `select id from containers where id = any($1) and status in ('creating', 'running', 'deleting')`,
      [ids],
    );
    return new Set(rows.map((r) => r.id));
  }

  async listRunning(limit: number, afterId?: string): Promise<ContainerRecord[]> {
    const rows = await this.sql.rows<ContainerRow>(
      `select * from containers where status = 'running' and ($2::text is null or id > $2) order by id limit $1`,
      [limit, afterId ?? null],
    );
    return rows.map(rowToContainer);
  }
}
