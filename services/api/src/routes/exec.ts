import express, { Router, type Response } from 'express';
import { execBody, type ExecLimits, type ExecResource } from '@berth/contracts';
import {
  BerthError,
  encodeOutput,
  incompleteUtf8Tail,
  resolveDataPath,
  type ExecOutcome,
  type ExecService,
  type OutputStream,
} from '@berth/core';
import { parseOrThrow } from '../http/validate.js';

export interface ExecRoutesOptions {
  exec: ExecService;
  limits: ExecLimits & { defaultTimeoutMs: number };
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

const sse = (res: Response, event: string, data: unknown): void => {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
};

export function execRoutes({ exec, limits }: ExecRoutesOptions): Router {
  const router = Router();
  const Body = execBody(limits);
  const json = express.json({ limit: limits.maxStdinBytes + 256 * 1024 });

  router.post('/containers/:id/exec', json, async (req, res) => {
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
      res.json(toResource(await exec.exec(req.projectId, req.params.id, input)));
      return;
    }

    const encoders: Record<OutputStream, ChunkEncoder> = {
      stdout: new ChunkEncoder(),
      stderr: new ChunkEncoder(),
    };
    let started = false;
    const start = (): void => {
      if (started) return;
      started = true;
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
    };
    try {
      const outcome = await exec.exec(req.projectId, req.params.id, {
        ...input,
        onOutput: (stream, chunk) => {
          start();
          sse(res, stream, encoders[stream].encode(chunk));
        },
      });
      start();
      sse(res, 'result', toResource(outcome));
      res.end();
    } catch (error) {
      // Before the first event the error handler answers with a status; after, it goes in the stream.
      if (!started) throw error;
      const e = error instanceof BerthError ? error : null;
      sse(res, 'error', {
        error: {
          message: e?.message ?? 'The server had an error while processing your request.',
          type: e?.type ?? 'server_error',
          param: e?.param ?? null,
          code: e?.code ?? null,
        },
      });
      res.end();
    }
  });
  return router;
}
