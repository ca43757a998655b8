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

/** A slot to run one exec in a usable container; `release` exactly once. */
export interface ExecLease {
  readonly record: ContainerRecord;
  release(): void;
}

/** Runs a command in a usable container; an exec is activity and moves last_active_at. */
export class ExecService {
  readonly #running = new Map<string, number>();
  #total = 0;

  constructor(private readonly options: ExecServiceOptions) {}

  /**
   * Looks the container up and takes a slot, before anything large (the request body) is read:
   * a flood of execs is refused with 429 while it costs nothing.
   */
  async reserve(projectId: string, containerId: string): Promise<ExecLease> {
    const record = await this.options.containers.getUsable(projectId, containerId);
    const running = this.#running.get(record.id) ?? 0;
    if (running >= this.options.maxConcurrent) {
      throw new RateLimitError(
        `Container '${record.id}' is already running ${running} commands, the most it may run at once. Retry when one finishes.`,
      );
    }
    if (this.#total >= this.options.maxConcurrentTotal) {
      throw new RateLimitError(
        `This server is running ${this.#total} commands, the most it runs at once. Retry shortly.`,
      );
    }
    this.#running.set(record.id, running + 1);
    this.#total += 1;
    let released = false;
    return {
      record,
      release: () => {
        if (released) return;
        released = true;
        this.#total -= 1;
        const left = (this.#running.get(record.id) ?? 1) - 1;
        if (left > 0) this.#running.set(record.id, left);
        else this.#running.delete(record.id);
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

  /** Runs the command in the leased container; the caller releases the lease. */
  async run({ record }: ExecLease, input: ExecInput): Promise<ExecOutcome> {
    const { containers, executor, runtime, clock } = this.options;
    checkExecArguments(input.argv, input.env);
    const created = clock.now();
    const id = newId('exec', created);
    await containers.touch(record);
    const result = await containers.withSandbox(record, () =>
      executor.exec({
        execId: id,
        containerId: sandboxKey(record),
        uid: record.sandboxUid,
        argv: input.argv,
        env: input.env,
        workdir: input.workdir,
        ...(input.stdin !== undefined ? { stdin: input.stdin } : {}),
        timeoutMs: input.timeoutMs,
        maxOutputBytes: this.options.maxOutputBytes,
        ...(input.signal ? { signal: input.signal } : {}),
        ...(input.onOutput ? { onOutput: input.onOutput } : {}),
      }),
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
