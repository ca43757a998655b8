import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import { BerthError, InvalidRequestError, NotFoundError, RateLimitError } from '../errors.js';
import { isId, newId } from '../ids.js';
import type { SandboxRef } from '../ports/sandbox-files.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { SandboxSessions, SessionEvent, SessionRunResult } from '../ports/sandbox-sessions.js';
import type { SessionRecord, SessionStore } from '../ports/session-store.js';
import type { ContainersService } from './containers-service.js';

/** A slot to run in a usable container (the exec service's, so runs and execs share limits). */
export interface RunLease {
  readonly record: ContainerRecord;
  release(): void;
}

export interface SessionsServiceOptions {
  containers: ContainersService;
  sandbox: SandboxSessions;
  store: SessionStore;
  runtime: SandboxRuntime;
  clock: Clock;
  /** Takes a run slot in the container (429 past the exec concurrency limits). */
  reserve: (projectId: string, containerId: string) => Promise<RunLease>;
  /** Sessions one container may hold. */
  maxPerContainer: number;
  maxOutputChars: number;
  /** Called with every finished run (for logs and metrics). */
  onRun?: (outcome: SessionRunOutcome) => void;
}

export interface SessionRunInput {
  code: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onEvent?: (event: SessionEvent) => void;
}

export interface SessionRunOutcome extends SessionRunResult {
  id: string;
  sessionId: string;
  containerId: string;
  createdAt: number;
}

const notFound = (id: string) => new NotFoundError(`No session found with id '${id}'.`);
const ref = (c: ContainerRecord): SandboxRef => ({ containerId: sandboxKey(c), uid: c.sandboxUid });

/**
 * Stateful Python sessions in a container. The row is written before the interpreter starts (so
 * the cap holds across replicas) and removed if it can't start. Runs are activity, like execs,
 * and take the same per-container slots. A run whose interpreter died marks the session `dead`;
 * one whose interpreter would not stop at its timeout gets a fresh interpreter at once.
 */
export class SessionsService {
  constructor(private readonly options: SessionsServiceOptions) {}

  async create(projectId: string, containerId: string): Promise<SessionRecord> {
    const { containers, store, sandbox, clock } = this.options;
    const container = await containers.getUsable(projectId, containerId);
    await containers.touch(container);
    const createdAt = unixSeconds(clock.now());
    const record: SessionRecord = {
      id: newId('session', createdAt),
      containerId: container.id,
      createdAt,
      status: 'ready',
      statusReason: null,
      lastRunAt: null,
    };
    if (!(await store.insert(record, this.options.maxPerContainer)))
      throw new RateLimitError(
        `Container '${container.id}' already has ${this.options.maxPerContainer} sessions, the most it may hold. Delete one first.`,
        30,
      );
    try {
      await containers.withSandbox(container, () => sandbox.start(ref(container), record.id));
    } catch (error) {
      await store.delete(container.id, record.id).catch(() => {});
      await sandbox.stop(ref(container), record.id).catch(() => {});
      throw error;
    }
    return record;
  }

  async list(projectId: string, containerId: string): Promise<SessionRecord[]> {
    const container = await this.options.containers.getUsable(projectId, containerId);
    return this.options.store.list(container.id);
  }

  async get(projectId: string, containerId: string, sessionId: string): Promise<SessionRecord> {
    const container = await this.options.containers.getUsable(projectId, containerId);
    return this.#find(container, sessionId);
  }

  async #find(container: ContainerRecord, sessionId: string): Promise<SessionRecord> {
    if (!isId('session', sessionId)) throw notFound(sessionId);
    const record = await this.options.store.get(container.id, sessionId);
    if (!record) throw notFound(sessionId);
    return record;
  }

  async delete(projectId: string, containerId: string, sessionId: string): Promise<void> {
    const { containers, store, sandbox } = this.options;
    const container = await containers.getUsable(projectId, containerId);
    const record = await this.#find(container, sessionId);
    await containers.touch(container);
    await containers.withSandbox(container, () => sandbox.stop(ref(container), record.id));
    await store.delete(container.id, record.id);
  }

  /** A fresh interpreter for the session (its state is gone), dead or alive. */
  async restart(projectId: string, containerId: string, sessionId: string): Promise<SessionRecord> {
    const { containers, store, sandbox } = this.options;
    const container = await containers.getUsable(projectId, containerId);
    const record = await this.#find(container, sessionId);
    await containers.touch(container);
    await containers.withSandbox(container, async () => {
      await sandbox.stop(ref(container), record.id);
      await sandbox.start(ref(container), record.id);
    });
    await store.setStatus(record.id, 'ready', null);
    return { ...record, status: 'ready', statusReason: null };
  }

  /** Checks the container, takes a slot and finds the session; the caller releases the lease. */
  async reserve(
    projectId: string,
    containerId: string,
    sessionId: string,
  ): Promise<{ lease: RunLease; session: SessionRecord }> {
    const lease = await this.options.reserve(projectId, containerId);
    try {
      const session = await this.#find(lease.record, sessionId);
      if (session.status === 'dead')
        throw new InvalidRequestError(
          `Session '${session.id}' has no interpreter (${session.statusReason ?? 'it died'}). Restart it with POST /v1/containers/${lease.record.id}/sessions/${session.id}/restart.`,
          { code: 'session_dead' },
        );
      return { lease, session };
    } catch (error) {
      lease.release();
      throw error;
    }
  }

  async run(
    { lease, session }: { lease: RunLease; session: SessionRecord },
    input: SessionRunInput,
  ): Promise<SessionRunOutcome> {
    const { containers, store, sandbox, runtime, clock } = this.options;
    const container = lease.record;
    const created = clock.now();
    const id = newId('sessionRun', unixSeconds(created));
    await containers.touch(container);
    const result = await containers.withSandbox(container, () =>
      sandbox.run(ref(container), session.id, {
        code: input.code,
        timeoutMs: input.timeoutMs,
        maxOutputChars: this.options.maxOutputChars,
        ...(input.signal ? { signal: input.signal } : {}),
        ...(input.onEvent ? { onEvent: input.onEvent } : {}),
      }),
    );
    await containers.touch(container);
    await store.ranAt(session.id, clock.now());
    if (result.end === 'busy')
      throw new BerthError(
        409,
        'invalid_request_error',
        `Session '${session.id}' is already running code; one run at a time. Retry when it finishes.`,
        { code: 'session_busy' },
      );
    if (result.end === 'absent') {
      await store.setStatus(session.id, 'dead', 'the interpreter is not running');
      throw new InvalidRequestError(
        `Session '${session.id}' has no interpreter (it is not running). Restart it with POST /v1/containers/${container.id}/sessions/${session.id}/restart.`,
        { code: 'session_dead' },
      );
    }
    let oomKilled = result.oomKilled;
    if (result.end === 'died') {
      // The interpreter went away: was it the whole sandbox? Say so on the container, truthfully.
      const state = await containers.withSandbox(container, () =>
        runtime.inspect(sandboxKey(container)),
      );
      if (!state?.running) {
        oomKilled ||= state?.oomKilled ?? false;
        await containers.markFailed(
          container.id,
          state?.oomKilled
            ? 'sandbox was killed for exceeding its memory limit'
            : 'sandbox stopped',
        );
      }
      await store.setStatus(
        session.id,
        'dead',
        oomKilled
          ? 'the interpreter was killed for exceeding the memory limit'
          : 'the interpreter exited',
      );
    }
    if (result.end === 'restarted') {
      // It would not stop at its timeout and was killed: a fresh interpreter, state gone.
      try {
        await containers.withSandbox(container, () => sandbox.start(ref(container), session.id));
      } catch {
        await store.setStatus(session.id, 'dead', 'the interpreter could not be restarted');
      }
    }
    const outcome: SessionRunOutcome = {
      ...result,
      oomKilled,
      id,
      sessionId: session.id,
      containerId: container.id,
      createdAt: unixSeconds(created),
    };
    this.options.onRun?.(outcome);
    return outcome;
  }
}
