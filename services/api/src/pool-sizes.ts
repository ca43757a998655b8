import type { MemoryLimit } from '@berth/core';

const LIMITS: readonly MemoryLimit[] = ['1g', '4g', '16g', '64g'];

/**
 * `BERTH_POOL_SIZES`: `1g=2,4g=1` → idle sandboxes kept per memory limit. `0` (or every size 0)
 * disables the pool. Throws a message naming what is wrong.
 */
export function parsePoolSizes(value: string): Partial<Record<MemoryLimit, number>> {
  const sizes: Partial<Record<MemoryLimit, number>> = {};
  if (value.trim() === '0' || value.trim() === 'none') return sizes;
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(\w+)=(\d{1,3})$/.exec(part);
    const limit = match?.[1] as MemoryLimit | undefined;
    if (!match || !limit || !LIMITS.includes(limit))
      throw new Error(`'${part}' is not LIMIT=COUNT with LIMIT one of ${LIMITS.join(', ')}`);
    const count = Number(match[2]);
    if (count > 0) sizes[limit] = count;
  }
  return sizes;
}
