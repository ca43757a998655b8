import type pg from 'pg';
import type { SessionRecord, SessionStatus, SessionStore } from '@berth/core';
import { translated } from './errors.js';

interface Row {
  id: string;
  container_id: string;
  created_at: number;
  status: string;
  status_reason: string | null;
  last_run_at: Date | null;
}

const toRecord = (r: Row): SessionRecord => {
  if (r.status !== 'ready' && r.status !== 'dead')
    throw new Error(`unknown session status ${r.status}`);
  return {
    id: r.id,
    containerId: r.container_id,
    createdAt: Number(r.created_at),
    status: r.status,
    statusReason: r.status_reason,
    lastRunAt: r.last_run_at,
  };
};

export class PgSessionStore implements SessionStore {
  constructor(private readonly pool: pg.Pool) {}

  insert(s: SessionRecord, max: number): Promise<boolean> {
    return translated(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        // Serialises creates per container so concurrent requests can't pass the cap together.
        await client.query(`select pg_advisory_xact_lock(hashtext('berth:sessions:' || $1))`, [
          s.containerId,
        ]);
        const { rowCount } = await client.query(
          `insert into container_sessions (id, container_id, created_at, status, status_reason)
           select $1, $2, $3, $4, $5
            where (select count(*) from container_sessions where container_id = $2) < $6`,
          [s.id, s.containerId, s.createdAt, s.status, s.statusReason, max],
        );
        await client.query('commit');
        return (rowCount ?? 0) > 0;
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
  }

  get(containerId: string, id: string): Promise<SessionRecord | null> {
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        'select * from container_sessions where id = $1 and container_id = $2',
        [id, containerId],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    });
  }

  list(containerId: string): Promise<SessionRecord[]> {
    return translated(async () => {
      const { rows } = await this.pool.query<Row>(
        'select * from container_sessions where container_id = $1 order by created_at, id',
        [containerId],
      );
      return rows.map(toRecord);
    });
  }

  async setStatus(id: string, status: SessionStatus, reason: string | null): Promise<void> {
    await translated(() =>
      this.pool.query(
        'update container_sessions set status = $2, status_reason = $3 where id = $1',
        [id, status, reason],
      ),
    );
  }

  async ranAt(id: string, at: Date): Promise<void> {
    await translated(() =>
      this.pool.query('update container_sessions set last_run_at = $2 where id = $1', [id, at]),
    );
  }

  delete(containerId: string, id: string): Promise<boolean> {
    return translated(async () => {
      const { rowCount } = await this.pool.query(
        'delete from container_sessions where id = $1 and container_id = $2',
        [id, containerId],
      );
      return (rowCount ?? 0) > 0;
    });
  }
}
