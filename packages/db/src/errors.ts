import { BerthError, UnavailableError } from '@berth/core';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * pg's errors become the domain's at this edge: an unreachable database is 503 (clients retry),
 * a unique violation is a conflict; anything else is a bug and stays as it is.
 */
export function translatePgError(error: unknown): unknown {
  if (error instanceof BerthError) return error;
  const e = error as { code?: string; message?: string } | null;
  const code = e?.code ?? '';
  const message = e?.message ?? '';
  if (
    CONNECTION_CODES.has(code) ||
    UNAVAILABLE_SQLSTATES.has(code) ||
    code.startsWith('08') ||
    /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
      message,
    )
  ) {
    return new UnavailableError('Database unavailable. Please retry.', { cause: error });
  }
  if (code === '23505') {
    return new BerthError(409, 'invalid_request_error', 'Conflict with an existing object.', {
      cause: error,
    });
  }
  return error;
}
