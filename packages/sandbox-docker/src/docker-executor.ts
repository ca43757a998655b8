import { Writable } from 'node:stream';
import type { ExecRequest, ExecResult, PreparedExec, SandboxExecutor } from '@berth/core';
import type { DockerClient } from './docker-client.js';
import {
  collect,
  createExec,
  runOnStandby,
  startExec,
  startStandby,
  supervised,
  type ExecSpec,
  type Standby,
} from './sandbox-exec.js';
import { sandboxUser } from './sandbox-user.js';

const OOM_COUNT = `cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null | sed -n 's/^oom_kill //p'; sed -n 's/^oom_kill //p' /sys/fs/cgroup/memory.events 2>/dev/null; true`;

/** Keeps up to `cap` bytes of a stream, counts the rest and drops it. */
class CappedSink extends Writable {
  readonly chunks: Buffer[] = [];
  kept = 0;
  truncated = false;
  constructor(
    private readonly cap: number,
    private readonly onChunk?: (chunk: Buffer) => void,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const room = this.cap - this.kept;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(part);
      this.kept += part.length;
      try {
        this.onChunk?.(part);
      } catch {
        // A listener that fails (a client gone mid-stream) must not stop the command's accounting.
      }
    }
    if (chunk.length > room) this.truncated = true;
    done();
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

export interface DockerSandboxExecutorOptions {
  client: DockerClient;
  /**
   * How long past `timeoutMs` the API waits for the sandbox to confirm the kill before it answers
   * anyway: the bound on how late a timed-out exec can answer.
   */
  graceMs?: number;
  /**
   * Keep a standby supervisor (`berth-supervisor standby`) in each sandbox that runs commands
   * again and again, so that an exec is handed to it instead of costing a Docker exec of its own
   * (default true). At most `maxStandbys` (default 256) wait at once, the least recently made
   * going first.
   */
  standby?: boolean;
  maxStandbys?: number;
  /** Each command started: on a standby, or as a Docker exec of its own. */
  onRun?: (path: 'standby' | 'docker') => void;
}

/** Sandboxes remembered as having run a command (a second one is what earns a standby). */
const MAX_REMEMBERED = 10_000;

/**
 * Runs commands in sandboxes as the sandbox's own user, each under the in-sandbox supervisor: a
 * child subreaper that owns the command's whole process tree and kills it at the timeout, or when
 * the client goes away (the API then runs the kill sweep from outside too). Answers by
 * `timeoutMs + graceMs` whatever the code does.
 */
export class DockerSandboxExecutor implements SandboxExecutor {
  readonly #client: DockerClient;
  readonly #graceMs: number;
  /** OOM kills seen per sandbox, so a SIGKILLed exec can be told apart from an OOM-killed one. */
  readonly #oomSeen = new Map<string, number>();
  readonly #standbyOn: boolean;
  readonly #maxStandbys: number;
  readonly #onRun: ((path: 'standby' | 'docker') => void) | undefined;
  /** Ready standbys by sandbox, oldest first. */
  readonly #standbys = new Map<string, Standby>();
  readonly #starting = new Set<string>();
  /** Sandboxes that have run a command through this executor. */
  readonly #ran = new Set<string>();
  /** Sandboxes whose standby died unused (killed by its code, or an image without the mode). */
  readonly #noStandby = new Set<string>();

  constructor(options: DockerSandboxExecutorOptions) {
    this.#client = options.client;
    this.#graceMs = options.graceMs ?? 2_000;
    this.#maxStandbys = options.maxStandbys ?? 256;
    this.#standbyOn = (options.standby ?? true) && this.#maxStandbys > 0;
    this.#onRun = options.onRun;
  }

  exec(request: ExecRequest): Promise<ExecResult> {
    return this.prepare(request).run();
  }

  /** Creates the engine's exec now; `run` starts it (ExecService overlaps this with its lookup). */
  prepare(request: ExecRequest): PreparedExec {
    const started = process.hrtime.bigint();
    const user = sandboxUser(request.uid);
    const tag = `berth:${request.execId}`;
    const workdir = request.workdir.replace(/^\/mnt\/data\/?/, '');
    const spec: ExecSpec = {
      containerId: request.containerId,
      user,
      argv: supervised(tag, request.timeoutMs, workdir, request.argv),
      env: Object.entries(request.env).map(([k, v]) => `${k}=${v}`),
      stdin: request.stdin !== undefined,
      tag,
      exitTrailer: true,
      deadlineMs: request.timeoutMs + this.#graceMs,
      ...(request.signal ? { signal: request.signal } : {}),
    };
    // A ready standby needs no engine exec; without one, the exec is created now, ahead of `run`.
    const created = this.#standbys.get(request.containerId)?.ready
      ? null
      : createExec(this.#client, spec);
    return { run: () => this.#run(request, spec, created, started) };
  }

  async #run(
    request: ExecRequest,
    spec: ExecSpec,
    created: ReturnType<typeof createExec> | null,
    started: bigint,
  ): Promise<ExecResult> {
    const { user } = spec;
    const onStandby = this.#onStandby(spec);
    const run = onStandby ?? (await startExec(this.#client, spec, created ?? undefined));
    this.#onRun?.(onStandby ? 'standby' : 'docker');

    const stdout = new CappedSink(request.maxOutputBytes, (c) => request.onOutput?.('stdout', c));
    const stderr = new CappedSink(request.maxOutputBytes, (c) => request.onOutput?.('stderr', c));
    run.stdout.pipe(stdout);
    run.stderr.pipe(stderr);
    if (run.stdin) {
      run.stdin.write(request.stdin!);
      // Half-close: the command sees EOF on stdin; its output keeps flowing back.
      run.stdin.end();
    }
    let timedOut = false;
    // The supervisor kills at the timeout itself; the sweep is for a supervisor that was stopped.
    const timer = setTimeout(() => {
      timedOut = true;
      void run.kill();
    }, request.timeoutMs);
    const end = await run.end;
    clearTimeout(timer);
    this.#afterRun(request.containerId, user);
    if (end.how === 'deadline') timedOut = true;
    // What was read is what is kept: let the sinks take the last chunks already in flight.
    await new Promise((r) => setImmediate(r));

    const exitCode = timedOut ? (end.exitCode ?? 137) : end.exitCode;
    const oomKilled =
      exitCode === 137 && !timedOut
        ? await this.#newOomKill(request.containerId, user, request.execId)
        : false;
    return {
      exitCode,
      stdout: stdout.buffer(),
      stderr: stderr.buffer(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      timedOut,
      oomKilled,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }

  /** Whether the sandbox's cgroup counted an OOM kill since the last look. */
  async #newOomKill(containerId: string, user: string, execId: string): Promise<boolean> {
    let out: string;
    try {
      const r = await collect(this.#client, {
        containerId,
        user,
        argv: ['/bin/sh', '-c', OOM_COUNT, `berth:${execId}-oom`],
        tag: `berth:${execId}-oom`,
        deadlineMs: 5_000,
      });
      out = r.stdout.toString();
    } catch {
      return false;
    }
    const count = Number.parseInt(out.trim().split('\n')[0] ?? '', 10);
    if (!Number.isFinite(count)) return false;
    const before = this.#oomSeen.get(containerId) ?? 0;
    this.#oomSeen.set(containerId, count);
    return count > before;
  }

  /** Forget a sandbox (after it is removed): its OOM count and its standby. */
  forget(containerId: string): void {
    this.#oomSeen.delete(containerId);
    this.#ran.delete(containerId);
    this.#noStandby.delete(containerId);
    this.#standbys.get(containerId)?.release();
    this.#standbys.delete(containerId);
  }

  /** Lets every standby go (at shutdown). */
  close(): void {
    for (const standby of this.#standbys.values()) standby.release();
    this.#standbys.clear();
  }

  /** How many standbys wait now. */
  get standbys(): number {
    return this.#standbys.size;
  }

  /** The run on this sandbox's standby, if one is ready for it. */
  #onStandby(spec: ExecSpec) {
    const standby = this.#standbys.get(spec.containerId);
    if (!standby) return null;
    this.#standbys.delete(spec.containerId);
    const run = runOnStandby(this.#client, spec, standby);
    if (!run) standby.release();
    return run;
  }

  /**
   * After a run: a sandbox running its second command (or later) gets a standby for the next,
   * started now, in the background. A sandbox that runs one command and goes (most creates of an
   * agent's loop) never costs one.
   */
  #afterRun(containerId: string, user: string): void {
    if (!this.#standbyOn || this.#noStandby.has(containerId)) return;
    if (!this.#ran.has(containerId)) {
      if (this.#ran.size >= MAX_REMEMBERED) this.#ran.clear();
      this.#ran.add(containerId);
      return;
    }
    if (this.#standbys.has(containerId) || this.#starting.has(containerId)) return;
    this.#starting.add(containerId);
    // Dead before it was taken or let go: it is the sandbox's only one (in the map, or not yet).
    const gone = (): void => {
      this.#standbys.delete(containerId);
      if (this.#noStandby.size >= MAX_REMEMBERED) this.#noStandby.clear();
      this.#noStandby.add(containerId);
    };
    startStandby(this.#client, containerId, user, gone)
      .then((ready) => {
        if (!ready.ready) return;
        while (this.#standbys.size >= this.#maxStandbys) {
          const [oldest, first] = this.#standbys.entries().next().value as [string, Standby];
          this.#standbys.delete(oldest);
          first.release();
        }
        this.#standbys.set(containerId, ready);
      })
      .catch(() => {
        // The sandbox went, or the engine said no: the next command runs the usual way.
      })
      .finally(() => this.#starting.delete(containerId));
  }
}
