import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  SandboxGoneError,
  type SandboxRef,
  type SandboxSessions,
  type SessionDisplay,
  type SessionError,
  type SessionRunRequest,
  type SessionRunResult,
} from '@berth/core';
import type { DockerClient } from './docker-client.js';
import { collect, startDetached, startExec } from './sandbox-exec.js';
import { sandboxUser } from './sandbox-user.js';

const RUNNER = readFileSync(new URL('./session-runner.py', import.meta.url), 'utf8');
const CLIENT = readFileSync(new URL('./session-client.py', import.meta.url), 'utf8');
/** One event line from the sandbox; a figure is the largest thing that legitimately comes back. */
const MAX_LINE = 48 * 1024 * 1024;
/** base64 characters of rich outputs one run may return; past it they are dropped and flagged. */
const MAX_DISPLAY_CHARS = 64 * 1024 * 1024;
/** How long past its timeout plus grace the API waits for the in-sandbox client at most. */
const BACKSTOP_MS = 10_000;

export interface DockerSandboxSessionsOptions {
  client: DockerClient;
  /** After the KeyboardInterrupt at a run's timeout, how long before the interpreter is killed. */
  interruptGraceMs?: number;
  /** How long a new interpreter may take to answer (ms). */
  startTimeoutMs?: number;
}

/** Splits a byte stream into lines, refusing (and dropping) any longer than `max`. */
class Lines {
  #pending: Buffer[] = [];
  #size = 0;
  #skipping = false;
  constructor(
    private readonly max: number,
    private readonly onLine: (line: string) => void,
  ) {}
  push(chunk: Buffer): void {
    let at = 0;
    for (let nl = chunk.indexOf(0x0a, at); nl >= 0; nl = chunk.indexOf(0x0a, at)) {
      this.#take(chunk.subarray(at, nl));
      if (!this.#skipping) this.onLine(Buffer.concat(this.#pending).toString('utf8'));
      this.#pending = [];
      this.#size = 0;
      this.#skipping = false;
      at = nl + 1;
    }
    this.#take(chunk.subarray(at));
  }
  #take(part: Buffer): void {
    if (this.#skipping || part.length === 0) return;
    this.#size += part.length;
    if (this.#size > this.max) {
      this.#skipping = true;
      this.#pending = [];
      return;
    }
    this.#pending.push(Buffer.from(part));
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * Sessions as one long-lived Python process per session inside the sandbox (session-runner.py),
 * started by a detached `docker exec` as the sandbox user, reached through a Unix socket under
 * /tmp, never a network port. Each run is a short `docker exec` of session-client.py, which owns
 * the timeout (SIGINT, then SIGKILL) so it holds even if the API goes away. What comes back is
 * output of code the sandbox controls: parsed defensively, bounded, never trusted.
 */
export class DockerSandboxSessions implements SandboxSessions {
  readonly #client: DockerClient;
  readonly #graceMs: number;
  readonly #startTimeoutMs: number;

  constructor(options: DockerSandboxSessionsOptions) {
    this.#client = options.client;
    this.#graceMs = options.interruptGraceMs ?? 2_000;
    this.#startTimeoutMs = options.startTimeoutMs ?? 15_000;
  }

  #clientArgv(tag: string, sessionId: string, ...args: string[]): string[] {
    return ['/usr/bin/python3', '-I', '-S', '-c', CLIENT, tag, sessionId, ...args];
  }

  async start(sandbox: SandboxRef, sessionId: string): Promise<void> {
    const client = this.#client;
    await startDetached(client, {
      containerId: sandbox.containerId,
      user: sandboxUser(sandbox.uid),
      argv: ['/usr/bin/python3', '-I', '-c', RUNNER, `berth-session:${sessionId}`, sessionId],
      env: ['LANG=C.UTF-8', 'PYTHONUNBUFFERED=1'],
    });
    const tag = `berth:session-ping-${randomBytes(6).toString('hex')}`;
    const ping = await collect(client, {
      containerId: sandbox.containerId,
      user: sandboxUser(sandbox.uid),
      argv: this.#clientArgv(tag, sessionId, 'ping'),
      tag,
      deadlineMs: this.#startTimeoutMs,
    });
    if (ping.end.how !== 'exited' || ping.end.exitCode !== 0)
      throw new Error(
        `the session's interpreter did not start (${ping.stderr.toString().slice(0, 500)})`,
      );
  }

  async stop(sandbox: SandboxRef, sessionId: string): Promise<void> {
    const tag = `berth:session-kill-${randomBytes(6).toString('hex')}`;
    try {
      await collect(this.#client, {
        containerId: sandbox.containerId,
        user: sandboxUser(sandbox.uid),
        argv: this.#clientArgv(tag, sessionId, 'kill'),
        tag,
        deadlineMs: 10_000,
      });
    } catch (error) {
      // No sandbox, no interpreter: nothing left to stop.
      if (error instanceof SandboxGoneError) return;
      throw error;
    }
  }

  async run(
    sandbox: SandboxRef,
    sessionId: string,
    request: SessionRunRequest,
  ): Promise<SessionRunResult> {
    const started = process.hrtime.bigint();
    const tag = `berth:session-run-${randomBytes(8).toString('hex')}`;
    const run = await startExec(this.#client, {
      containerId: sandbox.containerId,
      user: sandboxUser(sandbox.uid),
      argv: this.#clientArgv(
        tag,
        sessionId,
        'run',
        String(request.timeoutMs),
        String(this.#graceMs),
      ),
      env: ['LANG=C.UTF-8'],
      stdin: true,
      tag,
      deadlineMs: request.timeoutMs + this.#graceMs + BACKSTOP_MS,
      ...(request.signal ? { signal: request.signal } : {}),
    });

    const cap = request.maxOutputChars;
    const out = { stdout: '', stderr: '' };
    const truncated = { stdout: false, stderr: false };
    let result: string | null = null;
    let error: SessionError | null = null;
    const displays: SessionDisplay[] = [];
    let displayChars = 0;
    let displaysTruncated = false;
    let terminal: 'done' | 'killed' | 'died' | 'busy' | 'absent' | null = null;
    let interrupting = false;
    let oomKilled = false;
    const emit = (e: Parameters<NonNullable<SessionRunRequest['onEvent']>>[0]): void => {
      try {
        request.onEvent?.(e);
      } catch {
        // A listener that fails (a client gone mid-stream) must not stop the run's accounting.
      }
    };

    const lines = new Lines(MAX_LINE, (line) => {
      let e: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(line);
        if (!parsed || typeof parsed !== 'object') return;
        e = parsed as Record<string, unknown>;
      } catch {
        return;
      }
      if (terminal) return;
      switch (e.t) {
        case 'stdout':
        case 'stderr': {
          const name = e.t;
          const room = cap - out[name].length;
          let text = str(e.text);
          if (text.length > room) {
            text = text.slice(0, Math.max(0, room));
            truncated[name] = true;
          }
          if (!text) return;
          out[name] += text;
          emit({ type: name, text });
          return;
        }
        case 'display': {
          const data = str(e.data);
          if (e.mime !== 'image/png' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return;
          if (displayChars + data.length > MAX_DISPLAY_CHARS) {
            displaysTruncated = true;
            return;
          }
          displayChars += data.length;
          const path = str(e.path);
          const display: SessionDisplay = {
            mimeType: 'image/png',
            data,
            path: path.startsWith('/mnt/data/') && path.length <= 4096 ? path : null,
          };
          displays.push(display);
          emit({ type: 'display', display });
          return;
        }
        case 'result':
          result = str(e.repr).slice(0, cap);
          return;
        case 'error':
          error = {
            name: str(e.ename).slice(0, 256),
            value: str(e.evalue).slice(0, 65_536),
            traceback: (Array.isArray(e.traceback) ? e.traceback : [])
              .slice(-200)
              .map((l) => str(l).slice(0, 65_536)),
          };
          return;
        case 'interrupting':
          interrupting = true;
          return;
        case 'done':
          if (Array.isArray(e.truncated)) {
            if (e.truncated.includes('stdout')) truncated.stdout = true;
            if (e.truncated.includes('stderr')) truncated.stderr = true;
          }
          terminal = 'done';
          return;
        case 'died':
          oomKilled = e.oom === true;
          terminal = 'died';
          return;
        case 'killed':
        case 'busy':
        case 'absent':
          terminal = e.t;
          return;
        default:
      }
    });
    run.stdout.on('data', (chunk: Buffer) => lines.push(chunk));
    run.stderr.resume();
    run.stdin!.end(`${JSON.stringify({ op: 'run', code: request.code, max_output: cap })}\n`);
    const end = await run.end;
    await new Promise((r) => setImmediate(r));

    let how: SessionRunResult['end'];
    if (terminal === 'done') {
      const e = error as SessionError | null;
      how = interrupting && e?.name === 'KeyboardInterrupt' ? 'interrupted' : e ? 'error' : 'ok';
    } else if (terminal === 'killed') how = 'restarted';
    else if (terminal === 'died' || terminal === 'busy' || terminal === 'absent') how = terminal;
    else if (end.how === 'aborted') how = 'interrupted';
    else {
      // The client itself was stopped or never reported (code in the sandbox killed it, or the
      // backstop passed): the interpreter's state is unknown, so it is replaced.
      await this.stop(sandbox, sessionId).catch(() => {});
      how = 'restarted';
    }
    return {
      end: how,
      stdout: out.stdout,
      stderr: out.stderr,
      stdoutTruncated: truncated.stdout,
      stderrTruncated: truncated.stderr,
      result,
      error,
      displays,
      displaysTruncated,
      oomKilled,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }
}
