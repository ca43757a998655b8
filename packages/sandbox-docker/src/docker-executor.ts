import { Writable } from 'node:stream';
import Dockerode from 'dockerode';
import {
  SandboxGoneError,
  type ExecRequest,
  type ExecResult,
  type SandboxExecutor,
} from '@berth/core';
import { statusOf, translateDockerError } from './docker-errors.js';
import { sandboxName } from './labels.js';

export const EXEC_MARKER = 'BERTH_EXEC_ID';

// Kills every process whose environment carries the marker, in a few passes to catch forks in
// flight. Runs as the sandbox user: root in the sandbox has no CAP_KILL.
const KILL_TREE = `m="${EXEC_MARKER}=$1"; for pass in 1 2 3; do for p in /proc/[0-9]*; do
  [ "\${p#/proc/}" = "$$" ] && continue
  grep -qszxF "$m" "$p/environ" 2>/dev/null && kill -9 "\${p#/proc/}" 2>/dev/null; done; done; exit 0`;

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
      this.onChunk?.(part);
    }
    if (chunk.length > room) this.truncated = true;
    done();
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

export interface DockerSandboxExecutorOptions {
  socketPath?: string;
  /** uid:gid commands run as; never root. */
  user?: string;
}

/** Runs commands in sandboxes with `docker exec`, as the sandbox user. */
export class DockerSandboxExecutor implements SandboxExecutor {
  readonly #docker: Dockerode;
  readonly #user: string;
  /** OOM kills seen per sandbox, so a SIGKILLed exec can be told apart from an OOM-killed one. */
  readonly #oomSeen = new Map<string, number>();

  constructor(options: DockerSandboxExecutorOptions = {}) {
    this.#docker = new Dockerode(options.socketPath ? { socketPath: options.socketPath } : {});
    this.#user = options.user ?? '1000:1000';
  }

  async exec(request: ExecRequest): Promise<ExecResult> {
    const started = process.hrtime.bigint();
    const container = this.#docker.getContainer(sandboxName(request.containerId));
    const env = Object.entries(request.env).map(([k, v]) => `${k}=${v}`);
    env.push(`${EXEC_MARKER}=${request.execId}`);
    let exec: Dockerode.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await container.exec({
        Cmd: request.argv,
        Env: env,
        WorkingDir: request.workdir,
        User: this.#user,
        AttachStdin: request.stdin !== undefined,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = (await exec.start({
        hijack: true,
        stdin: request.stdin !== undefined,
      })) as NodeJS.ReadWriteStream;
    } catch (error) {
      if (statusOf(error) === 404)
        throw new SandboxGoneError(request.containerId, { cause: error });
      if (statusOf(error) === 409)
        throw new SandboxGoneError(request.containerId, { cause: error });
      throw translateDockerError(error);
    }

    const stdout = new CappedSink(request.maxOutputBytes, (c) => request.onOutput?.('stdout', c));
    const stderr = new CappedSink(request.maxOutputBytes, (c) => request.onOutput?.('stderr', c));
    let timedOut = false;
    let killing: Promise<void> | null = null;
    const kill = (): Promise<void> => (killing ??= this.#killTree(container, request.execId));
    const timer = setTimeout(() => {
      timedOut = true;
      void kill();
    }, request.timeoutMs);
    const onAbort = (): void => void kill();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) void kill();

    try {
      await new Promise<void>((resolve, reject) => {
        this.#docker.modem.demuxStream(stream, stdout, stderr);
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', reject);
        if (request.stdin !== undefined) {
          stream.write(request.stdin);
          // Half-close: the command sees EOF on stdin; its output keeps flowing back.
          (stream as unknown as { end(): void }).end();
        }
      });
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
    await killing;
    // The stream can end a moment before Docker records the exit code.
    let info = await this.#inspect(exec);
    for (let i = 0; info.Running && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      info = await this.#inspect(exec);
    }
    const exitCode = info.Running ? null : (info.ExitCode ?? null);
    const oomKilled =
      exitCode === 137 && !timedOut
        ? await this.#newOomKill(container, request.containerId)
        : false;
    return {
      exitCode: timedOut && exitCode === null ? 137 : exitCode,
      stdout: stdout.buffer(),
      stderr: stderr.buffer(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      timedOut,
      oomKilled,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }

  async #inspect(exec: Dockerode.Exec): Promise<Dockerode.ExecInspectInfo> {
    try {
      return await exec.inspect();
    } catch (error) {
      throw translateDockerError(error);
    }
  }

  /** A short exec as the sandbox user; its output, or null if the sandbox is gone. */
  async #run(container: Dockerode.Container, cmd: string[]): Promise<string | null> {
    try {
      const exec = await container.exec({
        Cmd: cmd,
        User: this.#user,
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out = new CappedSink(64 * 1024);
      const err = new CappedSink(64 * 1024);
      await new Promise<void>((resolve, reject) => {
        this.#docker.modem.demuxStream(stream, out, err);
        stream.once('end', resolve);
        stream.once('error', reject);
      });
      return out.buffer().toString();
    } catch {
      return null;
    }
  }

  async #killTree(container: Dockerode.Container, execId: string): Promise<void> {
    await this.#run(container, ['/bin/sh', '-c', KILL_TREE, 'berth-kill', execId]);
  }

  /** Whether the sandbox's cgroup counted an OOM kill since the last look. */
  async #newOomKill(container: Dockerode.Container, containerId: string): Promise<boolean> {
    const out = await this.#run(container, ['/bin/sh', '-c', OOM_COUNT]);
    const count = Number.parseInt(out?.trim().split('\n')[0] ?? '', 10);
    if (!Number.isFinite(count)) return false;
    const before = this.#oomSeen.get(containerId) ?? 0;
    this.#oomSeen.set(containerId, count);
    return count > before;
  }

  /** Forget a sandbox's OOM count (after it is removed). */
  forget(containerId: string): void {
    this.#oomSeen.delete(containerId);
  }
}
