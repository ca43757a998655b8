import type { ExecRequest, ExecResult, PreparedExec, SandboxExecutor } from '@berth/core';

/** What a command does in the fake: any part of the result; the rest is a clean exit 0. */
export type FakeCommand = (
  request: ExecRequest,
) => Partial<ExecResult> | Promise<Partial<ExecResult>>;

/** Runs no process: each exec is recorded and answered by `command`, which a test replaces. */
export class FakeSandboxExecutor implements SandboxExecutor {
  /** The execs run, in order. */
  readonly requests: ExecRequest[] = [];
  /** The execs begun (`prepare`), run or not. */
  readonly prepared: ExecRequest[] = [];
  command: FakeCommand = () => ({});

  prepare(request: ExecRequest): PreparedExec {
    this.prepared.push(request);
    return { run: () => this.exec(request) };
  }

  async exec(request: ExecRequest): Promise<ExecResult> {
    this.requests.push(request);
    const result = await this.command(request);
    return {
      exitCode: 0,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
      oomKilled: false,
      durationMs: 0,
      ...result,
    };
  }
}
