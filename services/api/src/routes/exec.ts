import express, { Router, type Request, type Response } from 'express';
import { execBody, type ExecLimits, type ExecResource } from '@berth/contracts';
import {
  RateLimitError,
  encodeOutput,
  incompleteUtf8Tail,
  resolveDataPath,
  type ExecLease,
  type ExecOutcome,
  type ExecService,
  type OutputStream,
} from '@berth/core';
import { parseOrThrow } from '../http/validate.js';
import { EventStream } from '../http/event-stream.js';

export interface ExecRoutesOptions {
  exec: ExecService;
  limits: ExecLimits & { defaultTimeoutMs: number; maxInflightBodyBytes: number };
}

function toResource(o: ExecOutcome): ExecResource {
  const out = encodeOutput(o.stdout);
  const err = encodeOutput(o.stderr);
  return {
    id: o.id,
    object: 'container.exec',
    container_id: o.containerId,
    created_at: o.createdAt,
    exit_code: o.exitCode,
    stdout: out.text,
    stdout_encoding: out.encoding,
    stdout_truncated: o.stdoutTruncated,
    stderr: err.text,
    stderr_encoding: err.encoding,
    stderr_truncated: o.stderrTruncated,
    timed_out: o.timedOut,
    oom_killed: o.oomKilled,
    duration_ms: Math.round(o.durationMs),
  };
}

/** Splits a byte stream into UTF-8 text events, carrying a character cut between chunks. */
class ChunkEncoder {
  #carry = Buffer.alloc(0);
  encode(chunk: Buffer): { text: string } | { base64: string } {
    const joined = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    // Hold back an incomplete trailing character for the next chunk.
    const end = joined.length - incompleteUtf8Tail(joined);
    const encoded = encodeOutput(joined.subarray(0, end));
    if (encoded.encoding === 'base64') {
      this.#carry = Buffer.alloc(0);
      return { base64: joined.toString('base64') };
    }
    this.#carry = Buffer.from(joined.subarray(end));
    return { text: encoded.text };
  }
}

/**
 * Bytes of exec bodies being read or held at once, across requests: a flood of large bodies is
 * refused with 429 before it is read, so the API's heap stays bounded.
 */
class BodyBudget {
  #used = 0;
  constructor(private readonly total: number) {}
  take(bytes: number): () => void {
    if (this.#used + bytes > this.total)
      throw new RateLimitError(
        'This server is reading as many exec request bodies as it holds at once. Retry shortly.',
      );
    this.#used += bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#used -= bytes;
    };
  }
}

export function execRoutes({ exec, limits }: ExecRoutesOptions): Router {
  const router = Router();
  const Body = execBody(limits);
  const maxBody = limits.maxStdinBytes + 256 * 1024;
  const json = express.json({ limit: maxBody });
  const budget = new BodyBudget(limits.maxInflightBodyBytes);
  const readBody = (req: Request, res: Response): Promise<void> =>
    new Promise((resolve, reject) =>
      json(req, res, (error?: unknown) => (error ? reject(error) : resolve())),
    );

  router.post('/containers/:id/exec', async (req, res) => {
    // The container and a slot first, the body after: refusing costs nothing. A container this
    // process has used is looked up while the body is read and the engine's exec is created.
    const lease = await exec.reserveEarly(req.projectId, req.params.id);
    let giveBack: (() => void) | null = null;
    try {
      const declared = Number(req.headers['content-length']);
      giveBack = budget.take(
        Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, maxBody) : maxBody,
      );
      await readBody(req, res);
      await respond(lease, req, res);
    } catch (error) {
      // The container's own refusal (gone, expired, failed) answers first, as it did before.
      await lease.verified;
      throw error;
    } finally {
      giveBack?.();
      lease.release();
    }
  });

  const respond = async (lease: ExecLease, req: Request, res: Response): Promise<void> => {
    const body = parseOrThrow(Body, req.body ?? {});
    const workdir = resolveDataPath(body.workdir ?? '/mnt/data', 'workdir');
    const argv = typeof body.command === 'string' ? ['/bin/sh', '-c', body.command] : body.command;
    // A client that goes away kills the command.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const input = {
      argv,
      env: body.env ?? {},
      workdir,
      ...(body.stdin !== undefined ? { stdin: Buffer.from(body.stdin, 'utf8') } : {}),
      timeoutMs: body.timeout_ms ?? limits.defaultTimeoutMs,
      signal: abort.signal,
    };

    if (!body.stream) {
      res.json(toResource(await exec.run(lease, input)));
      return;
    }

    const encoders: Record<OutputStream, ChunkEncoder> = {
      stdout: new ChunkEncoder(),
      stderr: new ChunkEncoder(),
    };
    const events = new EventStream(res);
    try {
      const outcome = await exec.run(lease, {
        ...input,
        onOutput: (stream, chunk) => events.send(stream, encoders[stream].encode(chunk)),
      });
      events.finish('result', toResource(outcome));
    } catch (error) {
      // Before the first event the error handler answers with a status; after, it goes in the stream.
      events.fail(error);
    }
  };
  return router;
}
