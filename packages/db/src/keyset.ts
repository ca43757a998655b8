import { idCreatedAt, InvalidRequestError, isId, type IdKind, type PageRequest } from '@berth/core';

/**
 * The keyset part of a list query over (created_at, id). The cursor is decoded from the `after`
 * id itself, so a page is positioned even when the after-row has been deleted meanwhile.
 * Appends its parameters to `params`; returns the condition (or null) and the ORDER BY / LIMIT tail.
 */
export function keyset(
  kind: IdKind,
  page: PageRequest,
  params: unknown[],
): { condition: string | null; tail: string } {
  let condition: string | null = null;
  if (page.after !== undefined) {
    if (!isId(kind, page.after)) {
      throw new InvalidRequestError(`Invalid 'after': '${page.after}' is not a valid id here.`, {
        param: 'after',
      });
    }
    params.push(idCreatedAt(kind, page.after), page.after);
    condition = `(created_at, id) ${page.order === 'asc' ? '>' : '<'} ($${params.length - 1}, $${params.length})`;
  }
  params.push(page.limit + 1);
  const dir = page.order === 'asc' ? 'asc' : 'desc';
  return { condition, tail: `order by created_at ${dir}, id ${dir} limit $${params.length}` };
}

/** Rows fetched with limit + 1 become a page. */
export const toPage = <R, T>(rows: R[], limit: number, map: (row: R) => T) => ({
  items: rows.slice(0, limit).map(map),
  hasMore: rows.length > limit,
});
