import type {
  EventListFilter,
  EventStore,
  LifecycleEvent,
  LifecycleEventKind,
  Page,
  StoredEvent,
} from '@berth/core';
import { PgStore } from './sql.js';

interface EventRow {
  id: number;
  at: Date;
  container_id: string;
  project_id: string | null;
  kind: string;
  reason: string | null;
}

const toEvent = (r: EventRow): StoredEvent => ({
  id: Number(r.id),
  at: r.at,
  containerId: r.container_id,
  projectId: r.project_id,
  kind: r.kind as LifecycleEventKind,
  reason: r.reason,
});

/** The lifecycle event log, newest first by id. */
export class PgEventStore extends PgStore implements EventStore {
  async record(event: LifecycleEvent): Promise<void> {
    // A caller that knows only the id (a failure found by the reconciler) gets the row's project.
    await this.sql.run(
      `insert into container_events (container_id, project_id, kind, reason, at)
       values ($1, coalesce($2, (select project_id from containers where id = $1)), $3, $4, $5)`,
      [
        event.containerId,
        event.projectId ?? null,
        event.kind,
        event.reason?.slice(0, 500) ?? null,
        this.clock.now(),
      ],
    );
  }

  async list(filter: EventListFilter): Promise<Page<StoredEvent>> {
    const params: unknown[] = [];
    const where: string[] = ['true'];
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.before !== undefined) add((n) => `id < ${n}`, filter.before);
    if (filter.kind !== undefined) add((n) => `kind = ${n}`, filter.kind);
    if (filter.containerId !== undefined) add((n) => `container_id = ${n}`, filter.containerId);
    if (filter.since !== undefined) add((n) => `at >= ${n}`, filter.since);
    params.push(filter.limit + 1);
    const rows = await this.sql.rows<EventRow>(
      `select id, at, container_id, project_id, kind, reason from container_events
          where ${where.join(' and ')} order by id desc limit $${params.length}`,
      params,
    );
    return {
      items: rows.slice(0, filter.limit).map(toEvent),
      hasMore: rows.length > filter.limit,
    };
  }

  purge(before: Date, limit: number): Promise<number> {
    return this.sql.run(
      `delete from container_events where id in (
         select id from container_events where at < $1 order by at limit $2)`,
      [before, limit],
    );
  }
}
