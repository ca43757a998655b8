import type { Response } from 'express';
import { BerthError } from '@berth/core';

/**
 * A server-sent-event answer that starts with its first event: until then an error is still the
 * error handler's (a status and the envelope); after, it is the stream's last event. Writing to a
 * client that went away is a no-op, never a throw.
 */
export class EventStream {
  #started = false;

  constructor(private readonly res: Response) {
    res.on('error', () => {});
  }

  get started(): boolean {
    return this.#started;
  }

  send(event: string, data: unknown): void {
    this.#start();
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** The last event, then the end. */
  finish(event: string, data: unknown): void {
    this.send(event, data);
    this.res.end();
  }

  /** Ends the stream with an `error` event in the envelope's shape; rethrows before it started. */
  fail(error: unknown): void {
    if (!this.#started) throw error;
    const e = error instanceof BerthError ? error : null;
    this.finish('error', {
      error: {
        message: e?.message ?? 'The server had an error while processing your request.',
        type: e?.type ?? 'server_error',
        param: e?.param ?? null,
        code: e?.code ?? null,
      },
    });
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    const res = this.res;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
  }
}
