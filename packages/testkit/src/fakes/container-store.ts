import {
  idCreatedAt,
  InvalidRequestError,
  isExpiredAt,
  isId,
  ManualClock,
  type Clock,
  type ContainerListFilter,
  type ContainerRecord,
  type ContainerStatus,
  type ContainerStore,
  type ExpiryStore,
  type ExpiryOutcome,
  type InsertOutcome,
  type Page,
} from '@berth/core';
import type { Hooks } from './hooks.js';

const VISIBLE = new Set<ContainerStatus>(['running', 'expired', 'failed']);
const LIVE = new Set<ContainerStatus>(['creating', 'running', 'deleting']);
/** Statuses whose sandbox may still exist, so their uid is taken (as the unique index says). */
const HOLDS_UID = new Set<ContainerStatus>(['creating', 'running', 'deleting', 'failed']);

const byKey = (a: ContainerRecord, b: ContainerRecord) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The containers table in memory, behind both ports Postgres serves from it (ContainerStore and
 * ExpiryStore), with the same contracts: the cap judged at the `now` given, uids unique among rows
 * whose sandbox may exist, keyset pages by (created_at, id), one claim at a time per row.
 * `updated_at` comes from the injected clock.
 */
export class FakeContainerStore implements ContainerStore, ExpiryStore {
  readonly #rows = new Map<string, { record: ContainerRecord; updatedAt: Date }>();
  readonly #claimed = new Set<string>();
  hooks: Hooks<ContainerStore & ExpiryStore> = {};

  constructor(readonly clock: Clock = new ManualClock()) {}

  /** The rows as stored (live objects: a status change shows on them), in insertion order. */
  get rows(): ContainerRecord[] {
    return [...this.#rows.values()].map((r) => r.record);
  }

  /** Any row, hidden ones included, or undefined. */
  row(id: string): ContainerRecord | undefined {
    return this.#rows.get(id)?.record;
  }

  /** Puts a row in as-is (any status, no cap), as earlier transitions would have left it. */
  seed(record: ContainerRecord, updatedAt: Date = this.clock.now()): ContainerRecord {
    this.#rows.set(record.id, { record, updatedAt });
    return record;
  }

  updatedAt(id: string): Date | undefined {
    return this.#rows.get(id)?.updatedAt;
  }

  #set(id: string, change: Partial<ContainerRecord>): void {
    const row = this.#rows.get(id);
    if (!row) return;
    Object.assign(row.record, change);
    row.updatedAt = this.clock.now();
  }

  async insertCreating(
    record: ContainerRecord,
    maxLive: number,
    now: Date,
  ): Promise<InsertOutcome> {
    await this.hooks.insertCreating?.(record, maxLive, now);
    const live = this.rows.filter(
      (r) =>
        r.projectId === record.projectId &&
        (r.status === 'creating' || r.status === 'running') &&
        !isExpiredAt(r, now),
    );
    if (live.length >= maxLive) return 'over_cap';
    if (this.#rows.has(record.id)) throw new Error(`duplicate container id ${record.id}`);
    if (this.rows.some((r) => r.sandboxUid === record.sandboxUid && HOLDS_UID.has(r.status)))
      return 'uid_taken';
    this.seed({ ...record });
    return 'inserted';
  }

  async markRunning(id: string): Promise<void> {
    await this.hooks.markRunning?.(id);
    if (this.row(id)?.status === 'creating') this.#set(id, { status: 'running' });
  }

  async get(projectId: string, id: string): Promise<ContainerRecord | null> {
    await this.hooks.get?.(projectId, id);
    const r = this.row(id);
    return r && r.projectId === projectId && VISIBLE.has(r.status) ? { ...r } : null;
  }

  async list(projectId: string, filter: ContainerListFilter): Promise<Page<ContainerRecord>> {
    await this.hooks.list?.(projectId, filter);
    if (filter.after !== undefined && !isId('container', filter.after)) {
      throw new InvalidRequestError(`Invalid 'after': '${filter.after}' is not a valid id here.`, {
        param: 'after',
      });
    }
    const sign = filter.order === 'asc' ? 1 : -1;
    const cursor =
      filter.after === undefined
        ? null
        : ({ createdAt: idCreatedAt('container', filter.after), id: filter.after } as const);
    const rows = this.rows
      .filter((r) => r.projectId === projectId && VISIBLE.has(r.status))
      .filter((r) => filter.name === undefined || r.name === filter.name)
      .filter((r) => !cursor || sign * byKey(r, cursor as ContainerRecord) > 0)
      .sort((a, b) => sign * byKey(a, b));
    return {
      items: rows.slice(0, filter.limit).map((r) => ({ ...r })),
      hasMore: rows.length > filter.limit,
    };
  }

  async markDeleting(projectId: string, id: string): Promise<ContainerRecord | null> {
    await this.hooks.markDeleting?.(projectId, id);
    const r = this.row(id);
    if (!r || r.projectId !== projectId || !VISIBLE.has(r.status)) return null;
    const before = { ...r };
    this.#set(id, { status: 'deleting' });
    return before;
  }

  async remove(id: string): Promise<void> {
    await this.hooks.remove?.(id);
    this.#rows.delete(id);
  }

  async touch(id: string, at: Date): Promise<boolean> {
    await this.hooks.touch?.(id, at);
    const r = this.row(id);
    if (r?.status !== 'running') return false;
    // Like the SQL update: last_active_at only moves forward, and updated_at is not touched.
    if (at > r.lastActiveAt) r.lastActiveAt = at;
    return true;
  }

  async setStatus(id: string, status: ContainerStatus, reason: string | null = null) {
    await this.hooks.setStatus?.(id, status, reason);
    this.#set(id, { status, statusReason: reason });
  }

  async listAbandoned(creatingBefore: Date): Promise<ContainerRecord[]> {
    await this.hooks.listAbandoned?.(creatingBefore);
    return [...this.#rows.values()]
      .filter(
        ({ record, updatedAt }) =>
          (record.status === 'creating' && updatedAt < creatingBefore) ||
          record.status === 'deleting',
      )
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime())
      .map(({ record }) => ({ ...record }));
  }

  async liveIds(ids: string[]): Promise<Set<string>> {
    await this.hooks.liveIds?.(ids);
    return new Set(ids.filter((id) => LIVE.has(this.row(id)?.status ?? 'expired')));
  }

  async listRunning(limit: number, afterId?: string): Promise<ContainerRecord[]> {
    await this.hooks.listRunning?.(limit, afterId);
    return this.rows
      .filter((r) => r.status === 'running' && (afterId === undefined || r.id > afterId))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map((r) => ({ ...r }));
  }

  async reapOne(
    now: Date,
    exclude: readonly string[],
    work: (record: ContainerRecord) => Promise<ExpiryOutcome | void>,
  ): Promise<ContainerRecord | null> {
    await this.hooks.reapOne?.(now, exclude, work);
    const due = this.rows
      .filter(
        (r) =>
          r.status === 'running' &&
          !this.#claimed.has(r.id) &&
          !exclude.includes(r.id) &&
          isExpiredAt(r, now),
      )
      .sort((a, b) => a.lastActiveAt.getTime() - b.lastActiveAt.getTime())[0];
    if (!due) return null;
    // The row lock: held while `work` runs, released whether it succeeds or throws.
    this.#claimed.add(due.id);
    try {
      await work({ ...due });
      this.#set(due.id, { status: 'expired' });
      return { ...due };
    } finally {
      this.#claimed.delete(due.id);
    }
  }

  async purge(before: Date, limit: number): Promise<number> {
    await this.hooks.purge?.(before, limit);
    const gone = [...this.#rows.values()]
      .filter(
        ({ record, updatedAt }) =>
          (record.status === 'expired' || record.status === 'failed') && updatedAt < before,
      )
      .slice(0, limit);
    for (const { record } of gone) this.#rows.delete(record.id);
    return gone.length;
  }
}
