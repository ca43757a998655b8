import { UnavailableError } from '@berth/core';
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

/**
 * Docker refused a bind mount whose source is not on its host: for a sandbox, that is the egress
 * directory, created by an API that doesn't share it with the engine (an API container without the
 * directory mounted at the same path).
 */
export function isMissingBindSource(error: unknown): boolean {
  const e = error as DockerishError | null;
  return /bind source path does not exist/i.test(
    `${e?.message ?? ''} ${JSON.stringify((e as { json?: unknown } | null)?.json ?? '')}`,
  );
}

/** What the client hears instead: an operator's fix, named by its setting, and no host path. */
export const egressDirMissing = (cause: unknown): UnavailableError =>
  new UnavailableError(
    'Containers are unavailable on this server: its egress directory (the setting ' +
      "BERTH_EGRESS_DIR, which holds the egress proxy's and the files channel's sockets) is not " +
      'on the Docker host at the same path. The operator must mount it ' +
      'into the API container at that path (docs/egress.md).',
    { cause },
  );
