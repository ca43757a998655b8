import type { Page } from '@berth/core';

/** OpenAI's list envelope; `first_id`/`last_id` are null on an empty page. */
export function listBody<R, T extends { id: string }>(page: Page<R>, toResource: (item: R) => T) {
  const data = page.items.map(toResource);
  return {
    object: 'list' as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: page.hasMore,
  };
}
