import { readFileSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import Dockerode from 'dockerode';
import {
  InvalidRequestError,
  PayloadTooLargeError,
  SandboxGoneError,
  type SandboxFileEntry,
  type SandboxFiles,
} from '@berth/core';
import { demux } from './demux.js';
import { statusOf, translateDockerError } from './docker-errors.js';
import { sandboxName } from './labels.js';

const HELPER = readFileSync(new URL('./files-helper.py', import.meta.url), 'utf8');
const MAX_LIST_BYTES = 8 * 1024 * 1024;
const MAX_FRAME = 1024 * 1024;

interface Running {
  exec: Dockerode.Exec;
  stream: NodeJS.ReadWriteStream;
}

/** Wraps each chunk as [u32 length][bytes] and ends with a zero frame: only a complete upload commits. */
function framer(maxBytes: number): Transform & { bytes: number } {
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      (t as Transform & { bytes: number }).bytes = bytes;
      if (bytes > maxBytes) {
        done(new PayloadTooLargeError(`File too large: the limit is ${maxBytes} bytes.`));
        return;
      }
      for (let at = 0; at < chunk.length; at += MAX_FRAME) {
        const part = chunk.subarray(at, at + MAX_FRAME);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(part.length);
        this.push(header);
        this.push(part);
      }
      done();
    },
    flush(done) {
      done(null, Buffer.alloc(4));
    },
  });
  return Object.assign(t, { bytes: 0 });
}

/**
 * The helper prints the file's size on the first line, then the bytes. The size is the sandbox's
 * word, so the body passes exactly that many bytes and fails if fewer arrive.
 */
function sizedBody(path: string): Transform & { size: Promise<number | null> } {
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
    transform(chunk: Buffer, _enc, done) {
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
  return Object.assign(body, { size });
}

const MAX_LIST_ENTRIES = 10_000;

/**
 * The helper's listing, checked as what it is, output of code the sandbox controls: valid text,
 * sane names and sizes, no duplicates, no temporary upload files, a bounded count.
 */
export function parseListing(raw: Buffer): SandboxFileEntry[] {
  const fields = raw.toString('utf8').split('\0');
  const seen = new Set<string>();
  const entries: SandboxFileEntry[] = [];
  for (let i = 0; i + 1 < fields.length && entries.length < MAX_LIST_ENTRIES; i += 2) {
    const path = fields[i]!;
    const bytes = Number(fields[i + 1]);
    const segments = path.split('/');
    if (!path || path.includes('\uFFFD') || Buffer.byteLength(path) > 4096 || seen.has(path))
      continue;
    if (segments.some((s) => s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > 255))
      continue;
    if (segments.at(-1)!.startsWith('.berth-upload-')) continue;
    if (!Number.isSafeInteger(bytes) || bytes < 0) continue;
    seen.add(path);
    entries.push({ path, bytes });
  }
  return entries;
}

/** Files in /mnt/data through `docker exec` of a small python helper, as the sandbox user. */
export class DockerSandboxFiles implements SandboxFiles {
  readonly #docker: Dockerode;
  readonly #user: string;

  constructor(options: { socketPath?: string; user?: string } = {}) {
    this.#docker = new Dockerode(options.socketPath ? { socketPath: options.socketPath } : {});
    this.#user = options.user ?? '1000:1000';
  }

  async #start(containerId: string, args: string[], stdin: boolean): Promise<Running> {
    try {
      const exec = await this.#docker.getContainer(sandboxName(containerId)).exec({
        Cmd: ['/usr/bin/python3', '-I', '-c', HELPER, ...args],
        Env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
        User: this.#user,
        WorkingDir: '/mnt/data',
        AttachStdin: stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = (await exec.start({ hijack: true, stdin })) as NodeJS.ReadWriteStream;
      return { exec, stream };
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 409)
        throw new SandboxGoneError(containerId, { cause: error });
      throw translateDockerError(error);
    }
  }

  async #exitCode(exec: Dockerode.Exec): Promise<number> {
    for (let i = 0; ; i++) {
      const info = await exec.inspect().catch((error: unknown) => {
        throw translateDockerError(error);
      });
      if (!info.Running || i >= 100) return info.ExitCode ?? -1;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async write(
    containerId: string,
    path: string,
    data: Readable,
    { maxBytes }: { maxBytes: number },
  ): Promise<{ bytes: number }> {
    const { exec, stream } = await this.#start(containerId, ['write', path], true);
    const { stdout, stderr } = demux(stream as unknown as Readable);
    const out: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    // Listen for the end before writing: a quick helper can finish while the upload is flushed.
    const done = finished(stdout).catch(() => {});
    const frames = framer(maxBytes);
    try {
      // Never end the socket before the zero frame is written: an incomplete upload must not commit.
      await pipeline(data, frames, stream as unknown as NodeJS.WritableStream, { end: false });
      (stream as unknown as { end(): void }).end();
    } catch (error) {
      // Close stdin without the final frame: the helper removes its temporary file and exits.
      // Wait for that (bounded), so nothing half-written is visible when the error is answered.
      (stream as unknown as { end(): void }).end();
      await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
      (stream as unknown as { destroy(): void }).destroy();
      throw error;
    }
    await done;
    const code = await this.#exitCode(exec);
    if (code === 0)
      return { bytes: Number.parseInt(Buffer.concat(out).toString(), 10) || frames.bytes };
    if (code === 3)
      throw new InvalidRequestError(
        `Cannot write '${path}': a directory or an unusable path is in the way.`,
        { param: 'path' },
      );
    if (code === 4)
      throw new PayloadTooLargeError(`No space left in the container's /mnt/data for '${path}'.`);
    throw new Error(`writing ${path} in ${containerId} failed (exit ${code}): ${await stderr}`);
  }

  async open(
    containerId: string,
    path: string,
  ): Promise<{ size: number; stream: Readable } | null> {
    const { exec, stream } = await this.#start(containerId, ['read', path], false);
    const { stdout, stderr } = demux(stream as unknown as Readable);
    const body = sizedBody(path);
    stdout.pipe(body);
    // A reader that goes away (a client abandoning a download) must not leave the exec hanging.
    body.once('close', () => (stream as unknown as { destroy(): void }).destroy());
    const size = await body.size;
    if (size !== null) return { size, stream: body };
    body.resume();
    const code = await this.#exitCode(exec);
    if (code === 2 || code === 3 || code === 64) return null;
    throw new Error(`reading ${path} in ${containerId} failed (exit ${code}): ${await stderr}`);
  }

  async list(containerId: string): Promise<SandboxFileEntry[]> {
    const { exec, stream } = await this.#start(containerId, ['list'], false);
    const { stdout, stderr } = demux(stream as unknown as Readable);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stdout) {
      total += (chunk as Buffer).length;
      if (total > MAX_LIST_BYTES) {
        (stream as unknown as { destroy(): void }).destroy();
        throw new Error(`listing of ${containerId} is larger than ${MAX_LIST_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const code = await this.#exitCode(exec);
    if (code !== 0)
      throw new Error(`listing ${containerId} failed (exit ${code}): ${await stderr}`);
    const fields = Buffer.concat(chunks).toString('utf8').split('\0');
    const entries: SandboxFileEntry[] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const path = fields[i]!;
      const bytes = Number(fields[i + 1]);
      // Whatever the sandbox printed is checked: sane path, sane size, valid text.
      if (
        !path ||
        path.includes('\uFFFD') ||
        path.split('/').some((s) => s === '' || s === '.' || s === '..')
      )
        continue;
      if (!Number.isSafeInteger(bytes) || bytes < 0) continue;
      entries.push({ path, bytes });
    }
    return entries;
  }

  async remove(containerId: string, path: string): Promise<void> {
    const { exec, stream } = await this.#start(containerId, ['remove', path], false);
    const { stdout, stderr } = demux(stream as unknown as Readable);
    stdout.resume();
    await finished(stdout).catch(() => {});
    const code = await this.#exitCode(exec);
    if (code === 0 || code === 2) return;
    if (code === 3) throw new InvalidRequestError(`Cannot delete '${path}': it is a directory.`);
    throw new Error(`removing ${path} in ${containerId} failed (exit ${code}): ${await stderr}`);
  }
}
