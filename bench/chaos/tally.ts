import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';

/** A check on an answer that came back 200 but was wrong (bytes, output). Never expected. */
export class WrongAnswer extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** A non-2xx answer to a raw fetch (the SDK has no exec). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
  ) {
    super(`HTTP ${status} ${code ?? ''}`);
  }
}

/** What kind of failure an error is: status and error code, network error code, or timeout. */
export function kindOf(error: unknown): string {
  if (error instanceof WrongAnswer) return `WRONG ${error.kind}`;
  if (error instanceof APIConnectionTimeoutError || error instanceof APIUserAbortError)
    return 'timeout';
  if (error instanceof HttpStatusError) return `${error.status} ${error.code ?? '-'}`;
  if (error instanceof APIError && error.status !== undefined)
    return `${error.status} ${error.code ?? error.type ?? '-'}`;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'timeout';
  if (error instanceof APIConnectionError || error instanceof TypeError)
    return `network ${causeCode(error) ?? error.message}`;
  return `other ${error instanceof Error ? error.message : String(error)}`;
}

function causeCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if ((e as Error).name === 'TimeoutError') return 'timeout';
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface OpStats {
  requests: number;
  ok: number;
  errors: Map<string, number>;
  latenciesMs: number[];
}

/** Requests, successes and errors by kind, per operation. */
export class Tally {
  readonly ops = new Map<string, OpStats>();

  #op(name: string): OpStats {
    let s = this.ops.get(name);
    if (!s) this.ops.set(name, (s = { requests: 0, ok: 0, errors: new Map(), latenciesMs: [] }));
    return s;
  }

  /** Runs one request, counts it, and returns its value or null when it failed. */
  async call<T>(op: string, fn: () => Promise<T>): Promise<T | null> {
    const s = this.#op(op);
    s.requests += 1;
    const start = Date.now();
    try {
      const value = await fn();
      s.ok += 1;
      s.latenciesMs.push(Date.now() - start);
      return value;
    } catch (error) {
      const kind = kindOf(error);
      s.errors.set(kind, (s.errors.get(kind) ?? 0) + 1);
      return null;
    }
  }

  get requests(): number {
    return [...this.ops.values()].reduce((n, s) => n + s.requests, 0);
  }

  /** Errors of every op by kind. */
  errorsByKind(): Map<string, number> {
    const all = new Map<string, number>();
    for (const s of this.ops.values())
      for (const [kind, n] of s.errors) all.set(kind, (all.get(kind) ?? 0) + n);
    return all;
  }

  wrongAnswers(): number {
    let n = 0;
    for (const [kind, count] of this.errorsByKind()) if (kind.startsWith('WRONG')) n += count;
    return n;
  }
}
