/** Running a command inside a sandbox, in the domain's words. */
export type OutputStream = 'stdout' | 'stderr';

export interface ExecRequest {
  /** The exec's id; it tags the command's supervisor, so the whole tree can be found and killed. */
  execId: string;
  containerId: string;
  /** The sandbox's own uid, which the command runs as. */
  uid: number;
  /** The program and its arguments (a string command arrives here as ['sh', '-c', command]). */
  argv: string[];
  env: Record<string, string>;
  /** Absolute, already checked to be under /mnt/data. */
  workdir: string;
  stdin?: Buffer;
  timeoutMs: number;
  /** Per stream; bytes past it are read and dropped, never held. */
  maxOutputBytes: number;
  /** Aborting (e.g. the client went away) kills the command's whole process tree. */
  signal?: AbortSignal;
  /** Each chunk as it arrives, in order, before capping is applied to the result. */
  onOutput?: (stream: OutputStream, chunk: Buffer) => void;
}

export interface ExecResult {
  /** null when the command was killed before it could report one. */
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  /** The kernel killed a process of this command for exceeding the sandbox's memory limit. */
  oomKilled: boolean;
  durationMs: number;
}

export interface SandboxExecutor {
  exec(request: ExecRequest): Promise<ExecResult>;
  /**
   * Begins what `exec` does first and runs nothing (the engine's exec create), so the caller can
   * overlap it with its own checks: `run` finishes the exec; a caller whose checks refuse drops it.
   */
  prepare?(request: ExecRequest): PreparedExec;
}

/** An exec begun by `prepare`: nothing runs until `run`. */
export interface PreparedExec {
  run(): Promise<ExecResult>;
}
