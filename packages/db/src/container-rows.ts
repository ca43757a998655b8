import type {
  ContainerRecord,
  ContainerStatus,
  MemoryLimit,
  NetworkPolicy,
  StoredDomainSecret,
} from '@berth/core';

export interface ContainerRow {
  id: string;
  project_id: string;
  name: string;
  created_at: number;
  status: string;
  status_reason: string | null;
  last_active_at: Date;
  expires_after_minutes: number;
  memory_limit: string;
  network_policy: unknown;
  sandbox_uid: number | null;
  archived_at?: Date | null;
  pool_slot?: string | null;
}

/** The uid every sandbox ran as before each got its own. */
const LEGACY_SANDBOX_UID = 1000;

const STATUSES = new Set<ContainerStatus>(['creating', 'running', 'expired', 'deleting', 'failed']);
const MEMORY = new Set<MemoryLimit>(['1g', '4g', '16g', '64g']);

interface StoredPolicy {
  type?: unknown;
  allowed_domains?: unknown;
  domain_secrets?: unknown;
}

/** Only the sealed value is ever stored; a clear `value` in a row is refused, loudly. */
function secretFromJson(value: unknown): StoredDomainSecret {
  const s = (value ?? {}) as Record<string, unknown>;
  if (
    typeof s.domain !== 'string' ||
    typeof s.name !== 'string' ||
    typeof s.placeholder !== 'string' ||
    typeof s.sealed !== 'string' ||
    'value' in s
  )
    throw new Error('unreadable domain_secrets entry in containers row');
  return { domain: s.domain, name: s.name, placeholder: s.placeholder, sealed: s.sealed };
}

function policyFromJson(value: unknown): NetworkPolicy {
  const p = (value ?? {}) as StoredPolicy;
  if (p.type === 'disabled') return { type: 'disabled' };
  if (p.type === 'allowlist' && Array.isArray(p.allowed_domains)) {
    return {
      type: 'allowlist',
      allowedDomains: p.allowed_domains.map(String),
      ...(Array.isArray(p.domain_secrets)
        ? { domainSecrets: p.domain_secrets.map(secretFromJson) }
        : {}),
    };
  }
  throw new Error(`unreadable network_policy in containers row: ${JSON.stringify(value)}`);
}

export const policyToJson = (p: NetworkPolicy): string =>
  JSON.stringify(
    p.type === 'disabled'
      ? { type: 'disabled' }
      : {
          type: 'allowlist',
          allowed_domains: p.allowedDomains,
          ...(p.domainSecrets
            ? {
                domain_secrets: p.domainSecrets.map((s) => ({
                  domain: s.domain,
                  name: s.name,
                  placeholder: s.placeholder,
                  sealed: s.sealed,
                })),
              }
            : {}),
        },
  );

/** Rows are parsed here, at the boundary: a row that doesn't fit the domain is a bug, loudly. */
export function rowToContainer(row: ContainerRow): ContainerRecord {
  if (!STATUSES.has(row.status as ContainerStatus))
    throw new Error(`unknown container status ${row.status}`);
  if (!MEMORY.has(row.memory_limit as MemoryLimit))
    throw new Error(`unknown memory limit ${row.memory_limit}`);
  return {
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    createdAt: Number(row.created_at),
    status: row.status as ContainerStatus,
    statusReason: row.status_reason,
    lastActiveAt: row.last_active_at,
    expiresAfterMinutes: row.expires_after_minutes,
    memoryLimit: row.memory_limit as MemoryLimit,
    networkPolicy: policyFromJson(row.network_policy),
    sandboxUid: row.sandbox_uid ?? LEGACY_SANDBOX_UID,
    ...(row.archived_at ? { archivedAt: row.archived_at } : {}),
    ...(row.pool_slot ? { poolSlot: row.pool_slot } : {}),
  };
}
