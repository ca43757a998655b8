import Dockerode from 'dockerode';
import { SandboxUnresponsiveError, UnavailableError } from '@berth/core';
import { isUnreachable } from './docker-errors.js';

export interface DockerClientOptions {
  /** Docker Engine socket; default /var/run/docker.sock. */
  socketPath?: string;
  /** Deadline of one control call (create, start, inspect, exec create/start, kill, remove, list). */
  callTimeoutMs?: number;
}

/** A Docker call that did not answer within its deadline; translated by `DockerClient.deadline`. */
export class DockerDeadlineError extends Error {
  constructor(
    readonly operation: string,
    readonly deadlineMs: number,
  ) {
    super(`Docker did not answer ${operation} within ${deadlineMs} ms`);
    this.name = 'DockerDeadlineError';
  }
}

/**
 * The one Docker client of the process, built once in the composition root and shared by the
 * runtime, the executor and the files adapter. Every call goes through `call`, so nothing waits on
 * Docker forever: a wedged sandbox (runc blocked, a container lock held) costs one deadline.
 */
export class DockerClient {
  readonly docker: Dockerode;
  readonly callTimeoutMs: number;
  /** Which engine this talks to (its socket), for caches keyed by engine. */
  readonly key: string;

  constructor(options: DockerClientOptions = {}) {
    this.key = options.socketPath ?? '/var/run/docker.sock';
    this.docker = new Dockerode(options.socketPath ? { socketPath: options.socketPath } : {});
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
  }

  /** Engine-wide calls with options dockerode's types leave out (the abort signal). */
  get engine(): {
    ping(o: { abortSignal: AbortSignal }): Promise<unknown>;
    info(o: { abortSignal: AbortSignal }): Promise<{ SecurityOptions?: string[] }>;
  } {
    return this.docker as unknown as DockerClient['engine'];
  }

  container(name: string): Dockerode.Container {
    return this.docker.getContainer(name);
  }

  /**
   * Runs one Docker API call with a deadline. Past it, the request is aborted (dockerode passes the
   * signal to the HTTP request) and the promise rejects with DockerDeadlineError, whether or not the
   * call honoured the signal.
   */
  async call<T>(
    operation: string,
    fn: (signal: AbortSignal) => Promise<T>,
    ms = this.callTimeoutMs,
  ): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DockerDeadlineError(operation, ms));
      }, ms);
    });
    const call = fn(controller.signal);
    // Past the deadline the call may still settle; its outcome is no longer anyone's business.
    call.catch(() => {});
    try {
      return await Promise.race([call, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the engine answers at all, within a short deadline. */
  async answers(ms = 2_000): Promise<boolean> {
    try {
      await this.call('ping', (abortSignal) => this.engine.ping({ abortSignal }), ms);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * What a failed call about one sandbox means for the caller: the engine is unreachable (503), the
   * sandbox is wedged (the engine answers a ping, the sandbox's call did not), or the error as is.
   */
  async translate(error: unknown, sandboxRef: string): Promise<unknown> {
    if (error instanceof DockerDeadlineError) {
      if (!(await this.answers()))
        return new UnavailableError('Docker engine unavailable. Please retry.', { cause: error });
      return new SandboxUnresponsiveError(sandboxRef, error.operation, error.deadlineMs, {
        cause: error,
      });
    }
    if (isUnreachable(error))
      return new UnavailableError('Docker engine unavailable. Please retry.', { cause: error });
    return error;
  }
}
