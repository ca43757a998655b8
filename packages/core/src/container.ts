import type { MemoryLimit } from '@berth/contracts';

export type { MemoryLimit };

/**
 * `creating` and `deleting` are internal, never shown: a row is visible from the moment its
 * sandbox runs until its delete begins. `failed` is a sandbox that vanished or died under a
 * live row (removed by hand, host rebooted, OOM-killed init): the row says so instead of lying.
 */
export type ContainerStatus = 'creating' | 'running' | 'expired' | 'deleting' | 'failed';

/**
 * A `domain_secrets` entry as Berth keeps it: the value only sealed (AES-256-GCM, bound to the
 * container id), and the placeholder the sandbox sees under `name` instead of the value.
 */
export interface StoredDomainSecret {
  domain: string;
  name: string;
  placeholder: string;
  sealed: string;
}

export type AllowlistPolicy = {
  type: 'allowlist';
  allowedDomains: string[];
  domainSecrets?: StoredDomainSecret[];
};

export type NetworkPolicy = { type: 'disabled' } | AllowlistPolicy;

export interface ContainerRecord {
  id: string;
  projectId: string;
  name: string;
  /** Unix seconds; equal to the time encoded in the id. */
  createdAt: number;
  status: ContainerStatus;
  lastActiveAt: Date;
  expiresAfterMinutes: number;
  memoryLimit: MemoryLimit;
  networkPolicy: NetworkPolicy;
  /** Why the container is `failed`, for operators. */
  statusReason: string | null;
  /** The uid (and gid) its sandbox runs as, unique among live containers; assigned by the store. */
  sandboxUid: number;
  /** The skills placed at create, when there were any (not a column of the row). */
  skills?: { name: string; description: string; path: string }[];
  /** When its /mnt/data was archived at expiry; null (or absent) when it never was. */
  archivedAt?: Date | null;
  /** The warm-pool sandbox this container was claimed from; absent for a cold create. */
  poolSlot?: string;
}

/**
 * The name its sandbox goes by in the runtime: the container's id, or the warm-pool slot it was
 * claimed from (a claim renames nothing: Docker's rename is slow, and Postgres holds the binding).
 */
export const sandboxKey = (c: Pick<ContainerRecord, 'id' | 'poolSlot'>): string =>
  c.poolSlot ?? c.id;

const GIB = 1024 ** 3;
export const memoryLimitBytes = (limit: MemoryLimit): number => Number.parseInt(limit, 10) * GIB;

/** When a container stops being usable: `expires_after` anchored on `last_active_at`. */
export const expiresAt = (c: Pick<ContainerRecord, 'lastActiveAt' | 'expiresAfterMinutes'>): Date =>
  new Date(c.lastActiveAt.getTime() + c.expiresAfterMinutes * 60_000);

export const isExpiredAt = (
  c: Pick<ContainerRecord, 'lastActiveAt' | 'expiresAfterMinutes'>,
  now: Date,
): boolean => now.getTime() >= expiresAt(c).getTime();

/**
 * The status a client sees. A running container whose deadline has passed is expired at once,
 * even before the reaper has removed its sandbox.
 */
export function visibleStatus(c: ContainerRecord, now: Date): 'running' | 'expired' | 'failed' {
  if (c.status === 'expired') return 'expired';
  if (c.status === 'failed') return 'failed';
  return isExpiredAt(c, now) ? 'expired' : 'running';
}
