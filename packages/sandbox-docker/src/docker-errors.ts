interface DockerishError {
  statusCode?: number;
  code?: string;
  message?: string;
  reason?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EPIPE',
  'ECONNRESET',
  'EACCES',
  'ETIMEDOUT',
]);

export const statusOf = (error: unknown): number | undefined =>
  (error as DockerishError | null)?.statusCode;

/** The engine can't be reached (socket missing, refused, reset): a 503 for clients, not a bug. */
export function isUnreachable(error: unknown): boolean {
  const e = error as DockerishError | null;
  if (!e) return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  // Also the engine's own answers while it restarts or its containerd is gone.
  return /socket hang up|connect ENOENT|Cannot connect to the Docker daemon|transport is closing|containerd\.sock.*(connection refused|no such file)|daemon is shutting down/i.test(
    `${e.message ?? ''} ${e.reason ?? ''} ${JSON.stringify((e as { json?: unknown }).json ?? '')}`,
  );
}
