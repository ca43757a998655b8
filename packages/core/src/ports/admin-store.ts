import type { ContainerRecord, ContainerStatus, MemoryLimit } from '../container.js';
import type { Page } from '../pagination.js';

/** What happened to a container, as the operators' event log records it. */
export type LifecycleEventKind =
  'created' | 'expired' | 'deleted' | 'failed' | 'oom' | 'exec_timed_out' | 'egress_denied';

export interface LifecycleEvent {
  kind: LifecycleEventKind;
  containerId: string;
  /** Unknown to some callers (a failure seen by id only); the store fills it from the row. */
  projectId?: string | null;
  reason?: string | null;
}

export interface StoredEvent extends LifecycleEvent {
  /** Increasing; the keyset cursor. */
  id: number;
  at: Date;
  projectId: string | null;
  reason: string | null;
}

export interface EventListFilter {
  limit: number;
  /** Events older than this id (pages run newest first). */
  before?: number | undefined;
  kind?: LifecycleEventKind | undefined;
  containerId?: string | undefined;
  /** Only events at or after this time. */
  since?: Date | undefined;
}

export interface EventStore {
  record(event: LifecycleEvent): Promise<void>;
  list(filter: EventListFilter): Promise<Page<StoredEvent>>;
  /** Deletes up to `limit` events older than `before`; returns how many. */
  purge(before: Date, limit: number): Promise<number>;
}

export interface AdminContainerFilter {
  limit: number;
  /** Pages run newest first; the id of the previous page's last item. */
  after?: string | undefined;
  status?: Extract<ContainerStatus, 'running' | 'expired' | 'failed'> | undefined;
  projectId?: string | undefined;
  memoryLimit?: MemoryLimit | undefined;
  /** Running containers whose deadline is within this many minutes of `now`. */
  expiringWithinMinutes?: number | undefined;
  now: Date;
}

export interface AdminSummary {
  byStatus: Record<string, number>;
  byProject: { projectId: string; projectName: string; running: number; memoryBytes: number }[];
  /** Sum of the memory limits of running containers and of warm-pool sandboxes. */
  memoryCommittedBytes: number;
  /** The warm pool's part of it: its sandboxes hold their limits before anyone claims them. */
  poolCommittedBytes: number;
  /** Warm-pool sandboxes by memory limit and state (idle: claimable; filling: starting). */
  pool: { memoryLimit: string; state: string; count: number }[];
  /** Running rows past their deadline: what the reaper still has to do. */
  reaperBacklog: number;
  /** The oldest such deadline, or null when the reaper is caught up. */
  oldestOverdue: Date | null;
}

/** Reads across projects, for operators. Never used on a project key's behalf. */
export interface AdminStore {
  listContainers(filter: AdminContainerFilter): Promise<Page<ContainerRecord>>;
  summary(now: Date): Promise<AdminSummary>;
  /** Whether a key hash is an active admin key. */
  isAdminKey(hash: Buffer): Promise<boolean>;
  createAdminKey(input: { name: string; prefix: string; hash: Buffer }): Promise<{ id: string }>;
}

/** Live usage of one running sandbox, read cheaply (cgroup files); null fields were unreadable. */
export interface SandboxUsage {
  memoryBytes: number | null;
  /** CPU time used since the sandbox started, in seconds. */
  cpuSeconds: number | null;
  processes: number | null;
}

export interface SandboxUsageReader {
  /** Usage of each id that answered within `deadlineMs`; missing ids did not. */
  read(containerIds: string[], deadlineMs: number): Promise<Map<string, SandboxUsage>>;
}
