/** Keyset pages: ordered by (created_at, id); `after` is the id of the previous page's last item. */
export interface PageRequest {
  limit: number;
  order: 'asc' | 'desc';
  after?: string | undefined;
}

export interface Page<T> {
  items: T[];
  hasMore: boolean;
}
