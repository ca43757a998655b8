/**
 * The one error tree. Every error a client may see is a BerthError; the HTTP layer renders it
 * into OpenAI's envelope `{error: {message, type, param, code}}`. Anything else is a bug and
 * answers a plain 500.
 */
export type ErrorType =
  'invalid_request_error' | 'rate_limit_exceeded' | 'insufficient_quota' | 'server_error';

export interface BerthErrorOptions {
  param?: string | null;
  code?: string | null;
  cause?: unknown;
  /** Seconds, rendered as the Retry-After header. Only where a retry can succeed. */
  retryAfter?: number | undefined;
  /**
   * Rendered as `x-should-retry`, which the official SDKs obey over their own rules: false where
   * retrying can't help (a quota), so a caller isn't held through retries that can only fail.
   */
  shouldRetry?: boolean | undefined;
}

export class BerthError extends Error {
  readonly param: string | null;
  readonly code: string | null;
  readonly retryAfter: number | undefined;
  readonly shouldRetry: boolean | undefined;

  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    options: BerthErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.retryAfter = options.retryAfter;
    this.shouldRetry = options.shouldRetry;
  }
}

export class InvalidRequestError extends BerthError {
  constructor(message: string, options: BerthErrorOptions = {}) {
    super(400, 'invalid_request_error', message, options);
  }
}

export class AuthenticationError extends BerthError {
  constructor(message = 'Incorrect API key provided.') {
    super(401, 'invalid_request_error', message, { code: 'invalid_api_key' });
  }
}

export class NotFoundError extends BerthError {
  constructor(message: string, options: BerthErrorOptions = {}) {
    super(404, 'invalid_request_error', message, options);
  }
}

export class ContainerExpiredError extends BerthError {
  constructor() {
    super(400, 'invalid_request_error', 'Container is expired.', { code: 'container_expired' });
  }
}

export class PayloadTooLargeError extends BerthError {
  constructor(message: string, options: BerthErrorOptions = {}) {
    super(413, 'invalid_request_error', message, options);
  }
}

export class RateLimitError extends BerthError {
  constructor(message: string, retryAfter = 1) {
    super(429, 'rate_limit_exceeded', message, { code: 'rate_limit_exceeded', retryAfter });
  }
}

/**
 * A quota is used up: only the client freeing something (or an operator) changes that, so no
 * Retry-After, and the SDKs are told not to retry (they retry every 429 by default).
 */
export class QuotaExceededError extends BerthError {
  constructor(message: string) {
    super(429, 'insufficient_quota', message, { code: 'insufficient_quota', shouldRetry: false });
  }
}

/**
 * A dependency (Docker, Postgres) can't be reached. Clients (and the SDK) retry 503 by themselves.
 * One that won't come back by retrying passes `{retryAfter: undefined, shouldRetry: false}`.
 */
export class UnavailableError extends BerthError {
  constructor(message: string, options: BerthErrorOptions = {}) {
    super(503, 'server_error', message, { retryAfter: 2, ...options });
  }
}

/** A call took longer than its deadline (a wedged sandbox, a stalled helper). */
export class DeadlineExceededError extends BerthError {
  constructor(message: string, options: BerthErrorOptions = {}) {
    super(504, 'server_error', message, { code: 'timeout', ...options });
  }
}

/**
 * A sandbox did not answer a call within its deadline while the engine itself answers: it is
 * wedged. The use-case marks the container failed (the reconciler then removes it) and answers 504.
 */
export class SandboxUnresponsiveError extends Error {
  constructor(
    readonly sandboxRef: string,
    readonly operation: string,
    readonly deadlineMs: number,
    options?: { cause?: unknown },
  ) {
    super(`sandbox ${sandboxRef} did not answer ${operation} within ${deadlineMs} ms`, options);
    this.name = 'SandboxUnresponsiveError';
  }
}

/** The sandbox behind a live row no longer exists in Docker. */
export class SandboxGoneError extends Error {
  constructor(
    readonly sandboxRef: string,
    options?: { cause?: unknown },
  ) {
    super(`sandbox ${sandboxRef} is gone`, options);
    this.name = 'SandboxGoneError';
  }
}

export const isBerthError = (error: unknown): error is BerthError => error instanceof BerthError;
