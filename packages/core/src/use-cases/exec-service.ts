import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { sandboxKey, type ContainerRecord } from '../container.js';
import { RateLimitError } from '../errors.js';
import { checkExecArguments } from '../exec-limits.js';
import { newId } from '../ids.js';
import type { ExecResult, OutputStream, SandboxExecutor } from '../ports/sandbox-executor.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { ContainerUse } from './container-access.js';

export interface ExecInput {
  argv: string[];
  env: Record<string, string>;
  workdir: string;
  stdin?: Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
  onOutput?: (stream: OutputStream, chunk: Buffer) => void;
}

export interface ExecOutcome extends ExecResult {
  id: string;
  containerId: string;
  createdAt: number;
}

export interface ExecServiceOptions {
  containers: ContainerUse;
  executor: SandboxExecutor;
  runtime: SandboxRuntime;
  clock: Clock;
  /** Execs running at once in one sandbox (per replica). */
  maxConcurrent: number;
  /** Execs running at once in this process, across sandboxes. */
  maxConcurrentTotal: number;
  maxOutputBytes: number;
  /** Called with every finished exec (for logs and metrics). */
  onOutcome?: (outcome: ExecOutcome) => void;
}

/** What never changes in a container's life: enough to begin an exec in its sandbox. */
export type SandboxIdentity = Pick<ContainerRecord, 'id' | 'poolSlot' | 'sandboxUid'>;

/** A slot to run one exec in a container; `release` exactly once. */
export interface ExecLease {
  /** The container's sandbox: known before the lookup answers, from `reserveEarly`. */
  readonly sandbox: SandboxIdentity;
  /** The container as looked up now: rejects with the lookup's error (404, expired, failed). */
  readonly verified: Promise<ContainerRecord>;
  release(): void;
}

/** A lease whose lookup has answered (`reserve`). */
export interface VerifiedExecLease extends ExecLease {
  readonly record: ContainerRecord;
}

const identityOf = ({ id, poolSlot, sandboxUid }: ContainerRecord): SandboxIdentity => ({
  id,
  sandboxUid,
  ...(poolSlot ? { poolSlot } : {}),
});

/** Containers whose sandbox an exec may be begun in before the lookup answers, per process. */
const KNOWN_LIMIT = 10_000;

/** Runs a command in a usable container; an exec is activity and moves last_active_at. */
export class ExecService {
  readonly #running = new Map<string, number>();
  #total = 0;
  /**
   * Containers this process found usable, by project: what never changes in a container's life
   * (its id, its sandbox, its uid) is known before Postgres answers. Oldest first, bounded.
   */
  readonly #known = new Map<string, SandboxIdentity>();

  constructor(private readonly options: ExecServiceOptions) {}

  /**
   * Looks the container up and takes a slot, before anything large (the request body) is read:
   * a flood of execs is refused with 429 while it costs nothing.
   */
  async reserve(projectId: string, containerId: string): Promise<VerifiedExecLease> {
    const record = await this.#lookUp(projectId, containerId);
    return { ...this.#lease(identityOf(record), Promise.resolve(record)), record };
  }

  /**
   * `reserve`, without waiting for the lookup when this project's container was found usable
   * before: the slot is taken now and the lookup goes on in `verified`, so the engine's exec
   * create (`run`) overlaps it. Nothing runs in the sandbox until the lookup has answered; a
   * refusal (deleted, expired, failed) comes out of `run` with the same error as from `reserve`.
   */
  async reserveEarly(projectId: string, containerId: string): Promise<ExecLease> {
    const known = this.#known.get(`${projectId}/${containerId}`);
    if (!known) return this.reserve(projectId, containerId);
    const verified = this.#lookUp(projectId, containerId);
    // Read by `run`, or by nobody when the request fails first: never an unhandled rejection.
    verified.catch(() => {});
    return this.#lease(known, verified);
  }

  async #lookUp(projectId: string, containerId: string): Promise<ContainerRecord> {
    const key = `${projectId}/${containerId}`;
    try {
      const record = await this.options.containers.getUsable(projectId, containerId);
      this.#known.delete(key);
      this.#known.set(key, identityOf(record));
      if (this.#known.size > KNOWN_LIMIT) this.#known.delete(this.#known.keys().next().value!);
      return record;
    } catch (error) {
      this.#known.delete(key);
      throw error;
    }
  }

  #lease(sandbox: SandboxIdentity, verified: Promise<ContainerRecord>): ExecLease {
    const running = this.#running.get(sandbox.id) ?? 0;
    if (running >= this.options.maxConcurrent) {
      throw new RateLimitError(
        `Container '${sandbox.id}' is already running ${running} commands, the most it may run at once. Retry when one finishes.`,
      );
    }
    if (this.#total >= this.options.maxConcurrentTotal) {
      throw new RateLimitError(
        `This server is running ${this.#total} commands, the most it runs at once. Retry shortly.`,
      );
    }
    this.#running.set(sandbox.id, running + 1);
    this.#total += 1;
    let released = false;
    return {
      sandbox,
      verified,
      release: () => {
        if (released) return;
        released = true;
        this.#total -= 1;
        const left = (this.#running.get(sandbox.id) ?? 1) - 1;
        if (left > 0) this.#running.set(sandbox.id, left);
        else this.#running.delete(sandbox.id);
      },
    };
  }

  async exec(projectId: string, containerId: string, input: ExecInput): Promise<ExecOutcome> {
    const lease = await this.reserve(projectId, containerId);
    try {
      return await this.run(lease, input);
    } finally {
      lease.release();
    }
  }

  /**
   * Runs the command in the leased container; the caller releases the lease. The engine's exec
   * is created while the lease's lookup is still out (`reserveEarly`), and started only once the
   * lookup says the container is usable: a refused one leaves an exec that never ran.
   */
  async run(lease: ExecLease, input: ExecInput): Promise<ExecOutcome> {
    const { containers, executor, runtime, clock } = this.options;
    checkExecArguments(input.argv, input.env);
    const created = clock.now();
    const id = newId('exec', created);
    const request = {
      execId: id,
      containerId: sandboxKey(lease.sandbox),
      uid: lease.sandbox.sandboxUid,
      argv: input.argv,
      env: input.env,
      workdir: input.workdir,
      ...(input.stdin !== undefined ? { stdin: input.stdin } : {}),
      timeoutMs: input.timeoutMs,
      maxOutputBytes: this.options.maxOutputBytes,
      ...(input.signal ? { signal: input.signal } : {}),
      ...(input.onOutput ? { onOutput: input.onOutput } : {}),
    };
    const prepared = executor.prepare?.(request) ?? { run: () => executor.exec(request) };
    const record = await lease.verified;
    // A container's sandbox and uid never change; were they to, the exec begun is not the one run.
    const same = sandboxKey(record) === request.containerId && record.sandboxUid === request.uid;
    await containers.touch(record);
    const result = await containers.withSandbox(record, () =>
      same
        ? prepared.run()
        : executor.exec({ ...request, containerId: sandboxKey(record), uid: record.sandboxUid }),
    );
    await containers.touch(record);
    let oomKilled = result.oomKilled;
    if (result.exitCode === 137 && !result.timedOut) {
      // Killed: was it the whole sandbox? Say so on the container, truthfully.
      const state = await containers.withSandbox(record, () => runtime.inspect(sandboxKey(record)));
      if (!state?.running) {
        oomKilled ||= state?.oomKilled ?? false;
        await containers.markFailed(
          record.id,
          state?.oomKilled
            ? 'sandbox was killed for exceeding its memory limit'
            : 'sandbox stopped',
        );
      }
    }
    const outcome = {
      ...result,
      oomKilled,
      id,
      containerId: record.id,
      createdAt: unixSeconds(created),
    };
    this.options.onOutcome?.(outcome);
    return outcome;
  }
}
