import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { Transform, Writable, type Readable } from 'node:stream';
import {
  BerthError,
  DeadlineExceededError,
  UnavailableError,
  InvalidRequestError,
  PayloadTooLargeError,
  type SandboxFileEntry,
  type SandboxFiles,
  type SandboxRef,
} from '@berth/core';
import type { DockerClient } from './docker-client.js';
import type { ChannelSocket, FilesChannel } from './files-channel.js';
import { startExec, type ExecEnd, type RunningExec } from './sandbox-exec.js';
import { sandboxUser } from './sandbox-user.js';

const HELPER = readFileSync(new URL('./files-helper.py', import.meta.url), 'utf8');
const MAX_LIST_BYTES = 8 * 1024 * 1024;
/** An upload frame's payload: the helper reads up to 1 MiB at a time. */
const FRAME = 256 * 1024;
const MAX_LIST_ENTRIES = 10_000;
/** A transfer's run may be long; what bounds it is the idle timeout, not this. */
const TRANSFER_DEADLINE_MS = 6 * 3_600_000;

/**
 * Frames the upload as [u32 length][bytes] into `socket` and ends with a zero frame: only a
 * complete upload commits. Chunks are gathered into frames of up to FRAME bytes: a request body
 * arrives in 64 KiB reads, and a header per read cost the helper a read and the socket a write
 * each. A frame goes out as one corked writev of its header and the chunks as they are (no copy:
 * a 200 MB upload would leave 200 MB of copies for the collector, and the RSS grows by it); a
 * write per slice cost the service more CPU in the socket than all the rest of the upload. The
 * next chunk is taken once the socket has room again: backpressure from the sandbox to the client.
 */
function framer(
  socket: Writable,
  maxBytes: number,
  onChunk: () => void,
): Writable & { bytes: number } {
  let bytes = 0;
  let held: Buffer[] = [];
  let heldBytes = 0;
  const frame = (last: boolean): void => {
    socket.cork();
    if (heldBytes) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(heldBytes, 0);
      socket.write(header);
      for (const part of held) socket.write(part);
    }
    if (last) socket.write(Buffer.alloc(4));
    socket.uncork();
    held = [];
    heldBytes = 0;
  };
  // Until the socket has room: a socket that fails or closes first is the pipeline's error.
  const room = (done: (error?: Error | null) => void): void => {
    if (!socket.writableNeedDrain) return done();
    const settle = (error?: Error | null) => {
      socket.off('drain', settle);
      socket.off('close', closed);
      socket.off('error', settle);
      done(error ?? null);
    };
    const closed = () => settle(new Error('the stream to the file helper closed'));
    socket.once('drain', settle);
    socket.once('close', closed);
    socket.once('error', settle);
  };
  const w = new Writable({
    // Two frames may wait here for the socket: the request keeps arriving while one is written.
    highWaterMark: 2 * FRAME,
    write(chunk: Buffer, _enc, done) {
      onChunk();
      bytes += chunk.length;
      (w as Writable & { bytes: number }).bytes = bytes;
      if (bytes > maxBytes) {
        done(new PayloadTooLargeError(`File too large: the limit is ${maxBytes} bytes.`));
        return;
      }
      for (let at = 0; at < chunk.length;) {
        const part = chunk.subarray(at, at + FRAME - heldBytes);
        held.push(part);
        heldBytes += part.length;
        at += part.length;
        if (heldBytes === FRAME) frame(false);
      }
      room(done);
    },
    final(done) {
      frame(true);
      room(done);
    },
  });
  return Object.assign(w, { bytes: 0 });
}

/**
 * The helper prints the file's size on the first line, then the bytes. The size is the sandbox's
 * word, so the body passes exactly that many bytes and fails if fewer arrive. The bytes pass as
 * the engine's frames brought them (slices, no copy): the HTTP response writes what arrived in
 * one turn as one writev (see the server's high-water mark).
 */
function sizedBody(
  path: string,
  onChunk: () => void,
): Transform & { size: Promise<number | null> } {
  let resolveSize!: (size: number | null) => void;
  const size = new Promise<number | null>((resolve) => (resolveSize = resolve));
  let header: Buffer | null = Buffer.alloc(0);
  let expected = 0;
  let sent = 0;
  const pass = (t: Transform, chunk: Buffer) => {
    const part = chunk.subarray(0, Math.max(0, expected - sent));
    sent += part.length;
    if (part.length) t.push(part);
  };
  const body = new Transform({
    readableHighWaterMark: 512 * 1024,
    transform(chunk: Buffer, _enc, done) {
      onChunk();
      if (header === null) {
        pass(this, chunk);
        return done();
      }
      header = Buffer.concat([header, chunk]);
      const nl = header.indexOf(0x0a);
      if (nl < 0) {
        if (header.length > 32) {
          resolveSize(null);
          header = null;
        }
        return done();
      }
      const n = Number(header.subarray(0, nl).toString());
      const rest = header.subarray(nl + 1);
      header = null;
      if (!Number.isSafeInteger(n) || n < 0) {
        resolveSize(null);
        return done();
      }
      expected = n;
      resolveSize(n);
      pass(this, rest);
      done();
    },
    flush(done) {
      resolveSize(null);
      done(sent === expected ? null : new Error(`file ${path} changed while it was read`));
    },
  });
  body.once('close', () => resolveSize(null));
  return Object.assign(body, { size });
}

/**
 * The helper's listing (path, size, mtime in ms, each NUL-terminated), checked as what it is,
 * output of code the sandbox controls: valid text, sane names, sizes and times, no duplicates, no
 * temporary upload files, a bounded count. A time that is not a sane one is left out (the caller
 * then uses its own), never trusted.
 */
export function parseListing(raw: Buffer): SandboxFileEntry[] {
  const fields = raw.toString('utf8').split('\0');
  const seen = new Set<string>();
  const entries: SandboxFileEntry[] = [];
  for (let i = 0; i + 2 < fields.length && entries.length < MAX_LIST_ENTRIES; i += 3) {
    const path = fields[i]!;
    const bytes = Number(fields[i + 1]);
    const mtimeMs = /^\d{1,15}$/.test(fields[i + 2]!) ? Number(fields[i + 2]) : null;
    const segments = path.split('/');
    if (!path || path.includes('\uFFFD') || Buffer.byteLength(path) > 4096 || seen.has(path))
      continue;
    if (segments.some((s) => s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > 255))
      continue;
    if (segments.at(-1)!.startsWith('.berth-upload-')) continue;
    if (!Number.isSafeInteger(bytes) || bytes < 0) continue;
    seen.add(path);
    entries.push(
      mtimeMs === null ? { path, bytes } : { path, bytes, modifiedAt: new Date(mtimeMs) },
    );
  }
  return entries;
}

/** Calls `onIdle` when `refresh` was not called for `ms`; a stalled transfer ends instead of hanging. */
function idleTimer(ms: number, onIdle: () => void): { refresh(): void; clear(): void } {
  const timer = setTimeout(onIdle, ms);
  return { refresh: () => void timer.refresh(), clear: () => clearTimeout(timer) };
}

export interface DockerSandboxFilesOptions {
  client: DockerClient;
  /** Deadline of a listing, a removal, and the start of a download (ms). */
  helperTimeoutMs?: number;
  /** A transfer with no bytes moving for this long is ended (ms). */
  idleTimeoutMs?: number;
  /** Moves uploads' and downloads' bytes over Unix sockets, not the exec's stdio (docs/files.md). */
  channel?: FilesChannel;
  /** Called as each transfer starts moving bytes, with the way they go. */
  onTransfer?: (transfer: SandboxTransfer) => void;
}

export interface SandboxTransfer {
  direction: 'upload' | 'download';
  via: 'channel' | 'stdio';
}

/** A helper run connected on the files channel; `out` and `err` are its streams as text. */
interface Channeled {
  run: RunningExec;
  socket: Socket;
  out: Promise<string>;
  err: Promise<string>;
}

/**
 * Files in /mnt/data through `docker exec` of a small python helper, as the sandbox's user. The
 * helper runs among code that may stop or kill it: every call has a deadline, is killed when its
 * client goes away, and a helper that was interfered with is a clear error, never a hang. With a
 * files channel, uploads' and downloads' bytes go over a socket of their own, not the exec's stdio.
 */
export class DockerSandboxFiles implements SandboxFiles {
  readonly #client: DockerClient;
  readonly #helperTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #channel: FilesChannel | undefined;
  readonly #onTransfer: ((transfer: SandboxTransfer) => void) | undefined;

  constructor(options: DockerSandboxFilesOptions) {
    this.#client = options.client;
    this.#helperTimeoutMs = options.helperTimeoutMs ?? 30_000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#channel = options.channel;
    this.#onTransfer = options.onTransfer;
  }

  #start(
    sandbox: SandboxRef,
    args: string[],
    opts: { stdin: boolean; deadlineMs: number; signal?: AbortSignal | undefined },
  ): Promise<RunningExec> {
    const tag = `berth:files-${randomBytes(8).toString('hex')}`;
    return startExec(this.#client, {
      containerId: sandbox.containerId,
      user: sandboxUser(sandbox.uid),
      argv: ['/usr/bin/python3', '-I', '-S', '-c', HELPER, tag, ...args],
      env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
      stdin: opts.stdin,
      tag,
      deadlineMs: opts.deadlineMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /** What a helper's end means when it did not exit 0 as expected. */
  #failure(end: ExecEnd, what: string, stderr: string): Error {
    if (end.how === 'deadline')
      return new DeadlineExceededError(
        `The container did not complete ${what} in time: its file helper stalled (code in the container may have stopped it).`,
      );
    if (end.how === 'aborted') return new Error(`${what} was abandoned by its client`);
    if (end.exitCode === 75)
      return new InvalidRequestError(
        `The container interfered with ${what}: another process took its file helper's socket.`,
        { code: 'sandbox_interference' },
      );
    if (end.exitCode === null || end.exitCode >= 128)
      return new InvalidRequestError(
        `The container interrupted ${what}: its file helper was killed (exit ${end.exitCode ?? 'unknown'}). Code in the container may have interfered.`,
        { code: 'sandbox_interference' },
      );
    return new Error(`${what} failed (exit ${end.exitCode}): ${stderr.slice(0, 2000)}`);
  }

  /** Reports how a transfer's bytes went, once it starts moving them. */
  #moving(direction: 'upload' | 'download', via: 'channel' | 'stdio'): void {
    this.#onTransfer?.({ direction, via });
  }

  /**
   * Starts a write or read helper on the files channel and waits (bounded) until it connects.
   * `null`: no channel here, or the sandbox has none (it predates it): the caller uses stdio.
   * An exit without connecting is the helper's answer (a missing file, a path in the way).
   */
  async #channeled(
    sandbox: SandboxRef,
    args: string[],
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<Channeled | { end: ExecEnd; err: Promise<string> } | null> {
    if (!this.#channel) return null;
    let listening: ChannelSocket;
    try {
      listening = await this.#channel.listen(sandbox.uid);
    } catch {
      // A channel directory this process can't use slows transfers down, never fails them.
      return null;
    }
    let run: RunningExec;
    try {
      run = await this.#start(sandbox, [...args, listening.name], {
        stdin: false,
        deadlineMs: TRANSFER_DEADLINE_MS,
        signal,
      });
    } catch (error) {
      listening.close();
      throw error;
    }
    // Read from the start: the run's end is heard only once both streams are drained.
    const out = text(run.stdout, 1024);
    const err = text(run.stderr, 64 * 1024);
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([
      listening.connection,
      run.end,
      new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), this.#helperTimeoutMs))),
    ]);
    clearTimeout(timer);
    listening.close();
    if (got === 'late') {
      run.cancel();
      throw new DeadlineExceededError(
        `The container did not start ${what} within ${this.#helperTimeoutMs} ms: its file helper stalled.`,
      );
    }
    if (got instanceof Socket) {
      // A transfer's failures are the run's; unread, a broken socket must not crash the process.
      got.on('error', () => {});
      return { run, socket: got, out, err };
    }
    if (got.how === 'exited' && got.exitCode === 75) return null;
    return { end: got, err };
  }

  async write(
    sandbox: SandboxRef,
    path: string,
    data: Readable,
    { maxBytes, signal }: { maxBytes: number; signal?: AbortSignal },
  ): Promise<{ bytes: number }> {
    const what = `the upload of '${path}'`;
    const channeled = await this.#channeled(sandbox, ['write', path], what, signal);
    if (channeled && 'end' in channeled)
      throw (
        this.#written(channeled.end, path, await channeled.err) ??
        this.#failure(channeled.end, what, await channeled.err)
      );
    if (channeled) {
      this.#moving('upload', 'channel');
      return this.#upload(channeled, channeled.socket, path, data, maxBytes);
    }
    const run = await this.#start(sandbox, ['write', path], {
      stdin: true,
      deadlineMs: TRANSFER_DEADLINE_MS,
      signal,
    });
    this.#moving('upload', 'stdio');
    const out = text(run.stdout, 1024);
    const err = text(run.stderr, 64 * 1024);
    return this.#upload({ run, out, err }, run.stdin!, path, data, maxBytes);
  }

  /** Frames `data` into `sink` (the helper's stdin or its socket) and waits for the commit. */
  async #upload(
    { run, out, err }: Omit<Channeled, 'socket'>,
    sink: Writable,
    path: string,
    data: Readable,
    maxBytes: number,
  ): Promise<{ bytes: number }> {
    let stalled = false;
    // Watches the bytes as they come (the framer holds up to a frame of them): a slow but moving
    // client is not idle, and a helper that stops reading stops them too.
    const idle = idleTimer(this.#idleTimeoutMs, () => {
      stalled = true;
      frames.destroy(new DeadlineExceededError('upload stalled'));
    });
    const frames = framer(sink, maxBytes, idle.refresh);
    // The source is the caller's (a request body): on failure it is drained, never destroyed, so
    // the caller sees this error, not a premature close of its own stream.
    const source = (error: Error) => frames.destroy(error);
    data.on('error', source);
    // The sink is never destroyed on failure either: it is half-closed without the final frame,
    // so the helper reads EOF, removes its temporary file and exits before the error is answered.
    const sent = new Promise<void>((resolve, reject) => {
      frames.once('error', reject);
      frames.once('finish', resolve);
      void run.end.then(() => reject(new Error('the file helper ended before the upload did')));
    });
    data.pipe(frames);
    try {
      // Never end the sink before the zero frame is written: an incomplete upload must not commit.
      await sent;
      idle.clear();
      sink.end();
    } catch (error) {
      idle.clear();
      data.unpipe(frames);
      // Nothing more reaches the sink, the final frame least of all.
      frames.destroy();
      data.off('error', source);
      data.on('error', () => {});
      data.resume();
      // Close the sink without the final frame: the helper removes its temporary file and exits.
      // Wait for that (bounded), so nothing half-written is visible when the error is answered.
      sink.end();
      const ended = await Promise.race([
        run.end,
        new Promise<null>((r) => setTimeout(() => r(null), 5000).unref()),
      ]);
      run.cancel();
      if (stalled)
        throw new DeadlineExceededError(
          `The upload of '${path}' stalled for ${this.#idleTimeoutMs} ms (the container stopped reading it, or the client stopped sending).`,
        );
      // The helper stopping first (disk full, path in the way) is the reason, not the broken pipe.
      if (ended && !(error instanceof PayloadTooLargeError)) {
        const mapped = this.#written(ended, path, '');
        if (mapped) throw mapped;
      }
      if (error instanceof BerthError) throw error;
      // The stream to the sandbox broke under us (the engine restarted, the sandbox died).
      throw new UnavailableError(
        `The upload of '${path}' was cut off by the container's engine. Please retry.`,
        { cause: error },
      );
    }
    // Every byte is with the helper: what is left is its rename, bounded like any helper call.
    const end = await Promise.race([
      run.end,
      new Promise<null>((r) => setTimeout(() => r(null), this.#helperTimeoutMs).unref()),
    ]);
    if (!end) {
      run.cancel();
      throw new DeadlineExceededError(
        `The container did not complete the upload of '${path}' within ${this.#helperTimeoutMs} ms of its last byte: its file helper stalled.`,
      );
    }
    if (end.how === 'exited' && end.exitCode === 0)
      return { bytes: Number.parseInt(await out, 10) || frames.bytes };
    throw (
      this.#written(end, path, await err) ??
      this.#failure(end, `the upload of '${path}'`, await err)
    );
  }

  /** What a write helper's exit means, when it is one of its own answers. */
  #written(end: ExecEnd, path: string, stderr: string): Error | null {
    if (end.how === 'exited' && end.exitCode === 3)
      return new InvalidRequestError(
        `Cannot write '${path}': a directory or an unusable path is in the way.`,
        { param: 'path' },
      );
    if (end.how === 'exited' && end.exitCode === 4)
      return new PayloadTooLargeError(`No space left in the container's /mnt/data for '${path}'.`);
    if (
      end.how === 'exited' &&
      end.exitCode !== null &&
      (end.exitCode >= 128 || end.exitCode === 75)
    )
      return this.#failure(end, `the upload of '${path}'`, stderr);
    return null;
  }

  async open(
    sandbox: SandboxRef,
    path: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<{ size: number; stream: Readable } | null> {
    const what = `the download of '${path}'`;
    const channeled = await this.#channeled(sandbox, ['read', path], what, signal);
    if (channeled && 'end' in channeled) return this.#unread(channeled.end, what, channeled.err);
    if (channeled) {
      this.#moving('download', 'channel');
      return this.#sized(channeled, channeled.socket, path);
    }
    const run = await this.#start(sandbox, ['read', path], {
      stdin: false,
      deadlineMs: TRANSFER_DEADLINE_MS,
      signal,
    });
    this.#moving('download', 'stdio');
    return this.#sized({ run, err: text(run.stderr, 64 * 1024) }, run.stdout, path);
  }

  /** A read helper's bytes from `source` (its stdout or its socket): the size line, then the file. */
  async #sized(
    { run, err }: Pick<Channeled, 'run' | 'err'>,
    source: Readable,
    path: string,
  ): Promise<{ size: number; stream: Readable } | null> {
    // Watches the bytes as they pass: a reader that stops reading stops them too.
    const idle = idleTimer(this.#idleTimeoutMs, () => {
      run.cancel();
      source.destroy();
      body.destroy(new DeadlineExceededError(`the download of '${path}' stalled`));
    });
    const body = sizedBody(path, idle.refresh);
    // Failures are reported to whoever reads the body; unread, they must not crash the process.
    body.on('error', () => {});
    source.pipe(body);
    body.once('finish', idle.clear);
    // A reader that goes away (a client abandoning a download) must not leave the helper running.
    body.once('close', () => {
      idle.clear();
      if (!body.readableEnded) {
        run.cancel();
        source.destroy();
      }
    });
    const size = await Promise.race([
      body.size,
      run.end.then(() => body.size),
      new Promise<'late'>((r) => setTimeout(() => r('late'), this.#helperTimeoutMs).unref()),
    ]);
    if (size === 'late') {
      body.destroy();
      run.cancel();
      throw new DeadlineExceededError(
        `The container did not start the download of '${path}' within ${this.#helperTimeoutMs} ms: its file helper stalled.`,
      );
    }
    if (size !== null) return { size, stream: body };
    body.resume();
    return this.#unread(await run.end, `the download of '${path}'`, err);
  }

  /** A read helper that sent no file: missing or unusable (null), or a failure. */
  async #unread(end: ExecEnd, what: string, err: Promise<string>): Promise<null> {
    if (end.how === 'exited' && (end.exitCode === 2 || end.exitCode === 3 || end.exitCode === 64))
      return null;
    throw this.#failure(end, what, await err);
  }

  async list(
    sandbox: SandboxRef,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<SandboxFileEntry[]> {
    const run = await this.#start(sandbox, ['list'], {
      stdin: false,
      deadlineMs: this.#helperTimeoutMs,
      signal,
    });
    const err = text(run.stderr, 64 * 1024);
    const chunks: Buffer[] = [];
    let total = 0;
    let tooLarge = false;
    run.stdout.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > MAX_LIST_BYTES) {
        tooLarge = true;
        run.cancel();
        return;
      }
      chunks.push(chunk);
    });
    const end = await run.end;
    if (tooLarge)
      throw new InvalidRequestError(
        `The container's /mnt/data listing is larger than ${MAX_LIST_BYTES} bytes.`,
      );
    if (end.how !== 'exited' || end.exitCode !== 0)
      throw this.#failure(end, 'the file listing', await err);
    return parseListing(Buffer.concat(chunks));
  }

  async remove(
    sandbox: SandboxRef,
    path: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const run = await this.#start(sandbox, ['remove', path], {
      stdin: false,
      deadlineMs: this.#helperTimeoutMs,
      signal,
    });
    const err = text(run.stderr, 64 * 1024);
    run.stdout.resume();
    const end = await run.end;
    if (end.how === 'exited' && (end.exitCode === 0 || end.exitCode === 2)) return;
    if (end.how === 'exited' && end.exitCode === 3)
      throw new InvalidRequestError(`Cannot delete '${path}': it is a directory.`);
    throw this.#failure(end, `the removal of '${path}'`, await err);
  }
}

/** Up to `cap` bytes of a stream as text, once it ends. */
function text(stream: Readable, cap: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    stream.on('data', (c: Buffer) => {
      if (kept < cap) chunks.push(c.subarray(0, cap - kept));
      kept += c.length;
    });
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    stream.once('end', done);
    stream.once('close', done);
  });
}
