import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { Service } from '../lifecycle.js';
import { installClientErrorHandler } from './client-errors.js';

/**
 * What a request and a response, and their socket, buffer before they push back (the default is
 * 16 KiB). A file moves in 64 KiB reads: below a read's size, every read of an upload paused the
 * socket, and every piece of a download waited for a drain before the next went out. Two reads'
 * worth, not more: every connection may hold this much of a body the API has not asked for yet
 * (with 1 MiB, 300 hostile exec requests with 2 MiB bodies grew the API by up to 197 MiB).
 */
const STREAM_HWM = 128 * 1024;

export interface HttpServerOptions {
  app: Express;
  host: string;
  port: number;
  /** How long stopping waits for requests in flight before it closes their connections. */
  shutdownTimeoutMs: number;
  logger: Logger;
}

/** The HTTP API as a service: listening once started; draining, then closed, once stopped. */
export class HttpServer implements Service {
  readonly name = 'http';
  #server: Server | null = null;
  #url: string | null = null;

  constructor(private readonly options: HttpServerOptions) {}

  /** Where it listens, once started. */
  get url(): string | null {
    return this.#url;
  }

  async start(): Promise<void> {
    const { app, host, port, logger } = this.options;
    const server: Server = await new Promise((resolve, reject) => {
      const s = createServer({ highWaterMark: STREAM_HWM }, app)
        .listen(port, host, () => resolve(s))
        .once('error', reject);
    });
    installClientErrorHandler(server, logger);
    this.#server = server;
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
    logger.info({ url: this.#url }, `berth listening on ${this.#url}`);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), this.options.shutdownTimeoutMs);
    try {
      await drained;
    } finally {
      clearTimeout(timer);
    }
  }
}
