import type { SandboxRef } from './sandbox-files.js';

/** A rich output of a run, as Jupyter's display_data: a figure the code showed. */
export interface SessionDisplay {
  mimeType: 'image/png';
  /** base64 of the bytes. */
  data: string;
  /** Where the same bytes were saved in the sandbox (absolute), or null if that failed. */
  path: string | null;
}

export interface SessionError {
  name: string;
  value: string;
  traceback: string[];
}

/** What a run streams as it happens. */
export type SessionEvent =
  { type: 'stdout' | 'stderr'; text: string } | { type: 'display'; display: SessionDisplay };

export interface SessionRunRequest {
  code: string;
  timeoutMs: number;
  /** Characters kept per stream (stdout, stderr); the rest is dropped inside the sandbox. */
  maxOutputChars: number;
  /** Aborting (a client gone) interrupts the code. */
  signal?: AbortSignal;
  onEvent?: (event: SessionEvent) => void;
}

/**
 * How a run ended: `ok`, `error` (the code raised; see `error`), `interrupted` (timeout, then
 * KeyboardInterrupt), `restarted` (timeout, and the interpreter did not stop: it was killed and
 * must be started again), `died` (the interpreter went away: OOM, os._exit, a signal), `absent`
 * (no interpreter answers: it died earlier), `busy` (another run holds the session).
 */
export type SessionRunEnd =
  'ok' | 'error' | 'interrupted' | 'restarted' | 'died' | 'absent' | 'busy';

export interface SessionRunResult {
  end: SessionRunEnd;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** repr() of the last expression, when the code ends with one that is not None. */
  result: string | null;
  error: SessionError | null;
  displays: SessionDisplay[];
  displaysTruncated: boolean;
  /** The kernel killed the interpreter for exceeding the sandbox's memory limit. */
  oomKilled: boolean;
  durationMs: number;
}

/** Stateful Python interpreters inside a sandbox, one per session, as the sandbox user. */
export interface SandboxSessions {
  /** Starts the session's interpreter and waits until it answers. */
  start(sandbox: SandboxRef, sessionId: string): Promise<void>;
  run(
    sandbox: SandboxRef,
    sessionId: string,
    request: SessionRunRequest,
  ): Promise<SessionRunResult>;
  /** Kills the interpreter (and forgets its socket). Idempotent. */
  stop(sandbox: SandboxRef, sessionId: string): Promise<void>;
}
