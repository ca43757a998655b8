import type { SessionRecord, SessionStatus, SessionStore } from '@berth/core';
import { PgStore } from './sql.js';

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

export class PgSessionStore extends PgStore implements SessionStore {
  insert(s: SessionRecord, max: number): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      // Serialises creates per container so concurrent requests can't pass the cap together.
      await tx.query(`select pg_advisory_xact_lock(hashtext('berth:sessions:' || $1))`, [
        s.containerId,
      ]);
      const inserted = await tx.run(
        `insert into container_sessions (id, container_id, created_at, status, status_reason)
           select $1, $2, $3, $4, $5
            where (select count(*) from container_sessions where container_id = $2) < $6`,
        [s.id, s.containerId, s.createdAt, s.status, s.statusReason, max],
      );
      return inserted > 0;
    });
  }

  async get(containerId: string, id: string): Promise<SessionRecord | null> {
    const row = await this.sql.one<Row>(
      'select * from container_sessions where id = $1 and container_id = $2',
      [id, containerId],
    );
    return row ? toRecord(row) : null;
  }

  async list(containerId: string): Promise<SessionRecord[]> {
    const { rows } = await this.sql.query<Row>(
      'select * from container_sessions where container_id = $1 order by created_at, id',
      [containerId],
    );
    return rows.map(toRecord);
  }

  async setStatus(id: string, status: SessionStatus, reason: string | null): Promise<void> {
    await this.sql.query(
      'update container_sessions set status = $2, status_reason = $3 where id = $1',
      [id, status, reason],
    );
  }

  async ranAt(id: string, at: Date): Promise<void> {
    await this.sql.query('update container_sessions set last_run_at = $2 where id = $1', [id, at]);
  }

  async delete(containerId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.sql.query(
      'delete from container_sessions where id = $1 and container_id = $2',
      [id, containerId],
    );
    return (rowCount ?? 0) > 0;
  }
}
