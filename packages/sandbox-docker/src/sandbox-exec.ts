import type { Socket } from 'node:net';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { SandboxGoneError } from '@berth/core';
import type { DockerClient } from './docker-client.js';
import { statusOf } from './docker-errors.js';
import { sandboxName } from './labels.js';
import { ExitTrailer } from './exit-trailer.js';

/**
 * The exec supervisor, a static binary in the sandbox image (infra/images/sandbox/supervisor.c):
 * subreaper, workdir walk without symlinks, tree kill at exit, timeout and on `kill TAG`.
 */
export const SUPERVISOR = '/usr/local/bin/berth-supervisor';

/** How long the outside kill sweep may take before it is given up on. */
const KILL_DEADLINE_MS = 5_000;

export interface ExecSpec {
  containerId: string;
  /** uid:gid the command runs as; never root. */
  user: string;
  argv: string[];
  env?: string[];
  /** Attach stdin: the caller writes to `stdin` and ends it. */
  stdin?: boolean;
  /**
   * An argv element that marks every process of this run (`berth:<id>`), so the kill sweep can
   * find them from outside. It must appear in `argv` for the sweep to find the run's root.
   */
  tag: string;
  /** The whole run's deadline: past it the stream is dropped, the tree killed, the run ends. */
  deadlineMs: number;
  /** Aborting ends the run the same way (a client that went away). */
  signal?: AbortSignal;
  /**
   * The command runs under the supervisor (`supervised`), whose exit trailer ends stdout: it is
   * held back from `stdout` and gives the exit code without an exec inspect. A run without one
   * (a supervisor older than the trailer, or one killed from outside) falls back to the inspect.
   */
  exitTrailer?: boolean;
}

export type ExecEnd =
  { how: 'exited'; exitCode: number | null } | { how: 'deadline' | 'aborted'; exitCode: null };

export interface RunningExec {
  /** Present when `stdin` was asked for. */
  stdin: Duplex | null;
  stdout: Readable;
  stderr: Readable;
  /** Settles once: the command exited, the deadline passed, or the run was aborted. Never rejects. */
  end: Promise<ExecEnd>;
  /** Kills the run's whole process tree from outside (idempotent). */
  kill(): Promise<void>;
  /**
   * Ends the run now, for a reader that went away: kills the tree, drops the Docker stream (an
   * unread stream would hold the exec, and the engine, forever) and settles `end` as aborted.
   */
  cancel(): void;
}

/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers) into stdout and stderr, with
 * backpressure on both: while a reader is slow the socket is not read. Payloads are passed on as
 * slices of the socket's chunks as they arrive (a frame split across chunks is never copied back
 * together). Malformed frames from the sandbox side end the streams; nothing here throws out of
 * an event handler.
 */
function demux(
  source: Readable,
  trailerTag: string | null = null,
): { stdout: PassThrough; stderr: PassThrough; trailer: ExitTrailer | null } {
  const stdout = new PassThrough({ highWaterMark: 1024 * 1024 });
  const trailer = trailerTag === null ? null : new ExitTrailer(stdout, trailerTag);
  const stderr = new PassThrough({ highWaterMark: 256 * 1024 });
  // Nobody may be reading these when they fail: errors are reported through `end`, not thrown.
  stdout.on('error', () => {});
  stderr.on('error', () => {});
  // The frame being read: its header (while incomplete), where its payload goes, what is left.
  let header: Buffer | null = null;
  let target: PassThrough | null = null;
  let left = 0;
  const readHeader = (frame: Buffer): void => {
    target = frame[0] === 1 ? stdout : frame[0] === 2 ? stderr : null;
    left = frame.readUInt32BE(4);
  };
  let waiting = false;
  // One listener per stream for the whole run (not one per wait): resumes once no reader is behind.
  const resume = (): void => {
    if (!waiting || stdout.writableNeedDrain || stderr.writableNeedDrain) return;
    waiting = false;
    source.resume();
  };
  for (const s of [stdout, stderr]) {
    s.on('drain', resume);
    // A reader that went away is not behind: its payload is dropped from now on.
    s.on('close', () => {
      if (waiting) {
        waiting = false;
        source.resume();
      }
    });
  }
  source.on('data', (chunk: Buffer) => {
    let at = 0;
    let full = false;
    while (at < chunk.length) {
      if (left === 0) {
        if (header === null && chunk.length - at >= 8) {
          readHeader(chunk.subarray(at, at + 8));
          at += 8;
        } else {
          // A header split across chunks (rare, 8 bytes at most): put together before it is read.
          const take = chunk.subarray(at, at + 8 - (header?.length ?? 0));
          header = header ? Buffer.concat([header, take]) : Buffer.from(take);
          at += take.length;
          if (header.length < 8) break;
          readHeader(header);
          header = null;
        }
        continue;
      }
      const payload = chunk.subarray(at, at + left);
      at += payload.length;
      left -= payload.length;
      const to = target as PassThrough | null;
      if (
        to &&
        !to.destroyed &&
        !(trailer && to === stdout ? trailer.write(payload) : to.write(payload))
      )
        full = true;
    }
    if (full && !waiting) {
      waiting = true;
      source.pause();
      resume();
    }
  });
  let ended = false;
  // The socket ended, or was destroyed (deadline, abort, Docker going away): end what we have.
  const end = (): void => {
    if (ended) return;
    ended = true;
    trailer?.finish();
    stdout.end();
    stderr.end();
  };
  source.once('end', end);
  source.once('close', end);
  source.once('error', end);
  return { stdout, stderr, trailer };
}

/**
 * The engine's half of an exec that runs nothing yet: `startExec` starts it. Its errors come out
 * of `startExec`, translated there; until then nobody needs to handle them.
 */
export function createExec(client: DockerClient, spec: ExecSpec): Promise<Dockerode.Exec> {
  const container = client.container(sandboxName(spec.containerId));
  const created = client.call('exec create', (abortSignal) =>
    container.exec({
      Cmd: spec.argv,
      Env: spec.env ?? [],
      User: spec.user,
      WorkingDir: '/',
      AttachStdin: spec.stdin ?? false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      abortSignal,
    } as Dockerode.ExecCreateOptions),
  );
  created.catch(() => {});
  return created;
}

/**
 * The one way Berth runs a command in a sandbox (execs, the files helper, probes, the kill sweep):
 * create, start, demux, wait for the exit code, every Docker call under a deadline, the whole run
 * under `deadlineMs`, aborted by `signal`. Errors of the Docker calls before the stream exists
 * reject (SandboxGoneError for a missing or stopped sandbox; the client's translation otherwise).
 */
export async function startExec(
  client: DockerClient,
  spec: ExecSpec,
  /** The engine's exec, created ahead by `createExec` with the same spec. */
  created?: Promise<Dockerode.Exec>,
): Promise<RunningExec> {
  const { exec, stream } = await openExec(client, spec, created);
  return wire(client, spec, exec, stream);
}

/** Docker's error about a sandbox as Berth's: a missing or stopped sandbox is gone. */
async function sandboxError(client: DockerClient, error: unknown, containerId: string) {
  const status = statusOf(error);
  if (status === 404 || status === 409) return new SandboxGoneError(containerId, { cause: error });
  return client.translate(error, containerId);
}

/** An attached exec started: its engine half and its raw stream (created now, unless given). */
async function openExec(
  client: DockerClient,
  spec: ExecSpec,
  created: Promise<Dockerode.Exec> = createExec(client, spec),
): Promise<{ exec: Dockerode.Exec; stream: Duplex }> {
  try {
    const exec = await created;
    const stream = (await client.call('exec start', (abortSignal) =>
      exec.start({ hijack: true, stdin: spec.stdin ?? false, abortSignal } as object),
    )) as unknown as Duplex;
    return { exec, stream };
  } catch (error) {
    throw await sandboxError(client, error, spec.containerId);
  }
}

/** A started exec's stream as a RunningExec: demuxed, under its deadline and abort signal. */
function wire(
  client: DockerClient,
  spec: ExecSpec,
  exec: Dockerode.Exec,
  stream: Duplex,
): RunningExec {
  stream.on('error', () => {});
  const { stdout, stderr, trailer } = demux(stream, spec.exitTrailer ? spec.tag : null);

  let killing: Promise<void> | null = null;
  const kill = (): Promise<void> =>
    (killing ??= killTree(client, spec.containerId, spec.user, spec.tag));

  let settle!: (end: ExecEnd) => void;
  const end = new Promise<ExecEnd>((resolve) => (settle = resolve));
  let settled = false;
  const finish = (result: ExecEnd): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    spec.signal?.removeEventListener('abort', onAbort);
    settle(result);
  };
  const giveUp = (how: 'deadline' | 'aborted'): void => {
    if (settled) return;
    void kill();
    stream.destroy();
    finish({ how, exitCode: null });
  };
  const timer = setTimeout(() => giveUp('deadline'), spec.deadlineMs);
  const onAbort = (): void => giveUp('aborted');
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  if (spec.signal?.aborted) giveUp('aborted');

  // Both halves drained and the socket closed: the command has exited; read its code.
  let closed = 0;
  const onClosed = (): void => {
    closed += 1;
    if (closed < 2 || settled) return;
    if (trailer?.code != null) finish({ how: 'exited', exitCode: trailer.code });
    else void exitCode(client, exec).then((code) => finish({ how: 'exited', exitCode: code }));
  };
  stdout.once('end', onClosed);
  stderr.once('end', onClosed);
  stdout.once('close', () => {
    if (!stdout.readableEnded) onClosed();
  });
  stderr.once('close', () => {
    if (!stderr.readableEnded) onClosed();
  });

  const cancel = (): void => {
    stdout.destroy();
    stderr.destroy();
    giveUp('aborted');
  };
  return { stdin: spec.stdin ? stream : null, stdout, stderr, end, kill, cancel };
}

/** The tag a standby's ExecSpec carries; its argv holds none until it becomes a run, with the run's. */
const STANDBY_TAG = 'berth:standby';

/** The largest standby frame the supervisor reads (its MAX_FRAME), and the most fields in one. */
const MAX_STANDBY_FRAME = 8 * 1024 * 1024;
const MAX_STANDBY_FIELDS = 65_536 - 8;

/**
 * A supervisor started ahead of its command (`berth-supervisor standby`): attached, silent, and
 * waiting on its stdin for one run. Handing it a run (`runOnStandby`) costs no Docker call, where
 * an exec's create and start cost the engine and runc ~40 ms on a 2-core host. It runs as the
 * sandbox's user, so the sandbox's own code can kill it or write to its stdin through /proc; that
 * can only spoil this sandbox's own next run, as killing a run's supervisor already can. Its
 * socket does not keep the process alive while it waits.
 */
export class Standby {
  #ready = true;
  readonly #onGone: () => void;

  constructor(
    readonly user: string,
    readonly exec: Dockerode.Exec,
    readonly stream: Duplex,
    onGone: () => void,
  ) {
    this.#onGone = onGone;
    stream.on('error', () => {});
    // Silent until handed a run: a word from it before that, or its end, means it can't take one.
    stream.on('data', this.#gone);
    stream.once('end', this.#gone);
    stream.once('close', this.#gone);
    (stream as Partial<Socket>).unref?.();
  }

  get ready(): boolean {
    return this.#ready;
  }

  readonly #gone = (): void => {
    if (!this.#detach()) return;
    this.stream.destroy();
    this.#onGone();
  };

  #detach(): boolean {
    if (!this.#ready) return false;
    this.#ready = false;
    this.stream.off('data', this.#gone);
    this.stream.off('end', this.#gone);
    this.stream.off('close', this.#gone);
    return true;
  }

  /** The stream, for one run; null once it can't take one. */
  take(): Duplex | null {
    if (!this.#detach()) return null;
    (this.stream as Partial<Socket>).ref?.();
    return this.stream;
  }

  /** Lets it go unused: its stdin ends and it exits. */
  release(): void {
    if (!this.#detach()) return;
    const { stream } = this;
    stream.once('end', () => stream.destroy());
    setTimeout(() => stream.destroy(), 5_000).unref();
    stream.resume();
    stream.end();
  }
}

/** Starts a standby in a sandbox; `onGone` is called if it dies before it is taken or released. */
export async function startStandby(
  client: DockerClient,
  containerId: string,
  user: string,
  onGone: () => void,
): Promise<Standby> {
  const spec: ExecSpec = {
    containerId,
    user,
    argv: [SUPERVISOR, 'standby'],
    stdin: true,
    tag: STANDBY_TAG,
    deadlineMs: 0,
  };
  const { exec, stream } = await openExec(client, spec);
  return new Standby(user, exec, stream, onGone);
}

/**
 * The frame that hands a standby its run: a 4-byte big-endian length, then NUL-terminated
 * `ENVC ENV... TAG TIMEOUT_MS WORKDIR ARGV...`, from a `supervised` argv. Null when it can't be
 * one (not a supervised argv, a NUL byte, past the supervisor's limits): that run is a Docker exec.
 */
export function standbyFrame(argv: string[], env: string[]): Buffer | null {
  if (argv.length < 7 || argv[0] !== SUPERVISOR || argv[1] !== 'run' || argv[5] !== '--')
    return null;
  const fields = [String(env.length), ...env, ...argv.slice(2, 5), ...argv.slice(6)];
  if (fields.length > MAX_STANDBY_FIELDS || fields.some((f) => f.includes('\0'))) return null;
  const body = Buffer.from(fields.join('\0') + '\0', 'utf8');
  if (body.length > MAX_STANDBY_FRAME) return null;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/**
 * Runs `spec` (a `supervised` argv) on a standby instead of a Docker exec of its own: the same
 * supervisor, output, exit trailer, deadline and kill. Null when the standby can no longer take it
 * (the caller runs it the usual way).
 */
export function runOnStandby(
  client: DockerClient,
  spec: ExecSpec,
  standby: Standby,
): RunningExec | null {
  const frame = standbyFrame(spec.argv, spec.env ?? []);
  if (!frame || standby.user !== spec.user) return null;
  const stream = standby.take();
  if (!stream) return null;
  const run = wire(client, spec, standby.exec, stream);
  stream.write(frame);
  // Without stdin the command reads EOF, as with an exec that attached none.
  if (!spec.stdin) stream.end();
  return run;
}

/**
 * Starts a command that outlives the call (the egress forwarder, a session's interpreter):
 * created and started detached, under the same deadlines and error translation as `startExec`.
 */
export async function startDetached(
  client: DockerClient,
  spec: { containerId: string; user: string; argv: string[]; env?: string[] },
): Promise<void> {
  const container = client.container(sandboxName(spec.containerId));
  try {
    const exec = await client.call('exec create', (abortSignal) =>
      container.exec({
        Cmd: spec.argv,
        Env: spec.env ?? [],
        User: spec.user,
        WorkingDir: '/',
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        abortSignal,
      } as Dockerode.ExecCreateOptions),
    );
    await client.call('exec start', (abortSignal) =>
      exec.start({ Detach: true, abortSignal } as object),
    );
  } catch (error) {
    throw await sandboxError(client, error, spec.containerId);
  }
}

/** The exec's exit code; null when Docker can't say in time (the stream ends a moment before). */
async function exitCode(client: DockerClient, exec: Dockerode.Exec): Promise<number | null> {
  // About a second in all, as before the back-off.
  for (let i = 0; i < 55; i++) {
    try {
      const info = await client.call('exec inspect', (abortSignal) =>
        exec.inspect({ abortSignal } as object),
      );
      if (!info.Running) return info.ExitCode ?? null;
    } catch {
      return null;
    }
    // Docker marks the exec done a moment after its stream ends: ask again soon, then back off.
    await new Promise((r) => setTimeout(r, Math.min(20, 2 ** i)));
  }
  return null;
}

/**
 * Kills every process of a tagged run, and escaped orphans, from a fresh exec. The sweep runs as
 * the sandbox's uid, so the code it hunts can stop it too: until a sweep reports the tree gone,
 * it is tried again a few times (the later sweeps also kill the stopped ones). Never throws.
 */
async function killTree(
  client: DockerClient,
  containerId: string,
  user: string,
  tag: string,
): Promise<void> {
  for (const pause of [0, 2_000, 5_000, 10_000]) {
    if (pause) await new Promise((r) => setTimeout(r, pause).unref());
    try {
      const swept = await collect(client, {
        containerId,
        user,
        argv: [SUPERVISOR, 'kill', tag],
        tag: `${tag}-kill`,
        deadlineMs: KILL_DEADLINE_MS,
      });
      if (swept.end.how === 'exited' && swept.end.exitCode === 0) return;
    } catch {
      return; // The sandbox is gone or wedged: nothing left to kill, or nothing we can do here.
    }
  }
}

export interface Collected {
  end: ExecEnd;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs a short command and keeps up to `cap` bytes of each stream. */
export async function collect(
  client: DockerClient,
  spec: Omit<ExecSpec, 'stdin'>,
  cap = 64 * 1024,
): Promise<Collected> {
  const run = await startExec(client, { ...spec, stdin: false });
  const keep = (s: Readable): Promise<Buffer> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      s.on('data', (c: Buffer) => {
        if (kept < cap) chunks.push(c.subarray(0, cap - kept));
        kept += c.length;
      });
      s.once('close', () => resolve(Buffer.concat(chunks)));
      s.once('end', () => resolve(Buffer.concat(chunks)));
    });
  const [stdout, stderr, end] = await Promise.all([keep(run.stdout), keep(run.stderr), run.end]);
  return { end, stdout, stderr };
}

/** argv that runs `argv` under the supervisor: subreaper, workdir without symlinks, tree kill. */
export function supervised(
  tag: string,
  timeoutMs: number,
  workdirRelative: string,
  argv: string[],
): string[] {
  return [SUPERVISOR, 'run', tag, String(timeoutMs), workdirRelative, '--', ...argv];
}
