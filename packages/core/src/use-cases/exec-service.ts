import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { InvalidRequestError, RateLimitError, SandboxGoneError } from '../errors.js';
import { newId } from '../ids.js';
import type { ExecResult, OutputStream, SandboxExecutor } from '../ports/sandbox-executor.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { ContainersService } from './containers-service.js';

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
  containers: ContainersService;
  executor: SandboxExecutor;
  runtime: SandboxRuntime;
  clock: Clock;
  /** Execs running at once in one sandbox (per replica). */
  maxConcurrent: number;
  maxOutputBytes: number;
}

/** Runs a command in a usable container; an exec is activity and moves last_active_at. */
export class ExecService {
  readonly #running = new Map<string, number>();

  constructor(private readonly options: ExecServiceOptions) {}

  async exec(projectId: string, containerId: string, input: ExecInput): Promise<ExecOutcome> {
    const { containers, executor, runtime, clock } = this.options;
    const record = await containers.getUsable(projectId, containerId);
    const running = this.#running.get(record.id) ?? 0;
    if (running >= this.options.maxConcurrent) {
      throw new RateLimitError(
        `Container '${record.id}' is already running ${running} commands, the most it may run at once. Retry when one finishes.`,
      );
    }
    this.#running.set(record.id, running + 1);
    const created = clock.now();
    const id = newId('exec', unixSeconds(created));
    try {
      await containers.touch(record);
      let result: ExecResult;
      try {
        result = await executor.exec({
          execId: id,
          containerId: record.id,
          argv: input.argv,
          env: input.env,
          workdir: input.workdir,
          ...(input.stdin !== undefined ? { stdin: input.stdin } : {}),
          timeoutMs: input.timeoutMs,
          maxOutputBytes: this.options.maxOutputBytes,
          ...(input.signal ? { signal: input.signal } : {}),
          ...(input.onOutput ? { onOutput: input.onOutput } : {}),
        });
      } catch (error) {
        if (!(error instanceof SandboxGoneError)) throw error;
        await containers.markFailed(record.id, 'sandbox vanished');
        throw new InvalidRequestError(
          `Container '${record.id}' has failed (its sandbox is gone); create a new one.`,
          {
            code: 'container_failed',
          },
        );
      }
      await containers.touch(record);
      let oomKilled = result.oomKilled;
      if (result.exitCode === 137 && !result.timedOut) {
        // Killed: was it the whole sandbox? Say so on the container, truthfully.
        const state = await runtime.inspect(record.id);
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
      return { ...result, oomKilled, id, containerId: record.id, createdAt: unixSeconds(created) };
    } finally {
      const left = (this.#running.get(record.id) ?? 1) - 1;
      if (left > 0) this.#running.set(record.id, left);
      else this.#running.delete(record.id);
    }
  }
}
