import type { MemoryLimit, PoolNetwork, PoolSizes } from '@berth/core';

const LIMITS: readonly MemoryLimit[] = ['1g', '4g', '16g', '64g'];
const NETWORKS: readonly PoolNetwork[] = ['disabled', 'allowlist'];

/**
 * `BERTH_POOL_SIZES`: `1g=2,1g/allowlist=1,4g=1` → idle sandboxes kept per memory limit and
 * network policy (`LIMIT` alone is `LIMIT/disabled`). `0` (or every size 0) disables the pool.
 * Throws a message naming what is wrong.
 */
export function parsePoolSizes(value: string): PoolSizes {
  const sizes: PoolSizes = {};
  if (value.trim() === '0' || value.trim() === 'none') return sizes;
  const seen = new Set<string>();
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(\w+)(?:\/(\w+))?=(\d{1,3})$/.exec(part);
    const limit = match?.[1] as MemoryLimit | undefined;
    const network = (match?.[2] ?? 'disabled') as PoolNetwork;
    if (!match || !limit || !LIMITS.includes(limit))
      throw new Error(
        `'${part}' is not LIMIT=COUNT or LIMIT/NETWORK=COUNT with LIMIT one of ${LIMITS.join(', ')}`,
      );
    if (!NETWORKS.includes(network))
      throw new Error(`'${part}': the network must be one of ${NETWORKS.join(', ')}`);
    const key = `${limit}/${network}`;
    if (seen.has(key)) throw new Error(`'${part}': the pool ${key} is sized twice`);
    seen.add(key);
    const count = Number(match[3]);
    if (count > 0) sizes[network] = { ...sizes[network], [limit]: count };
  }
  return sizes;
}

/** Every pool with a size, as `[network, limit, size]`. */
export const poolEntries = (sizes: PoolSizes): [PoolNetwork, MemoryLimit, number][] =>
  NETWORKS.flatMap((network) =>
    (Object.entries(sizes[network] ?? {}) as [MemoryLimit, number][]).map(
      ([limit, size]): [PoolNetwork, MemoryLimit, number] => [network, limit, size],
    ),
  );
