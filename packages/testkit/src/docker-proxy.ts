import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relayPair } from './sockets.js';

export interface ProxiedRequest {
  method: string;
  path: string;
}

/**
 * A Docker socket between Berth and the real engine, for tests that need the engine to misbehave:
 * `stall` holds matching requests forever (a wedged sandbox, an engine that stops answering),
 * `respond` answers matching requests itself (a doctored `/info`, a probe that "starts"). Everything
 * else, hijacked exec streams included, is forwarded byte for byte.
 */
export class DockerSocketProxy {
  readonly socketPath: string;
  readonly #dir: string;
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  #stalls: ((r: ProxiedRequest) => boolean)[] = [];
  #responders: {
    match: (r: ProxiedRequest) => boolean;
    answer: (upstreamBody: () => Promise<Buffer>) => Promise<{ status: number; body: unknown }>;
  }[] = [];
  /** Requests held by a stall, for assertions. */
  stalled = 0;

  private constructor(readonly target: string) {
    this.#dir = mkdtempSync(join(tmpdir(), 'berth-docker-proxy-'));
    this.socketPath = join(this.#dir, 'docker.sock');
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s: net.Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {});
    });
    // Exec start and attach upgrade the connection: pass it through untouched.
    this.#server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      const upstream = net.connect(this.target, () => {
        upstream.write(rawHead(req));
        if (head.length) upstream.write(head);
        client.pipe(upstream).pipe(client);
      });
      relayPair(this.#sockets, client, upstream);
    });
  }

  static async start(target = '/var/run/docker.sock'): Promise<DockerSocketProxy> {
    const proxy = new DockerSocketProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(proxy.socketPath, resolve));
    return proxy;
  }

  /** Holds every request that matches, from now on, until `release` or `close`. */
  stall(match: (r: ProxiedRequest) => boolean): void {
    this.#stalls.push(match);
  }

  release(): void {
    this.#stalls = [];
  }

  /** Answers matching requests with `answer`, which may read the engine's own answer first. */
  respond(
    match: (r: ProxiedRequest) => boolean,
    answer: (upstreamBody: () => Promise<Buffer>) => Promise<{ status: number; body: unknown }>,
  ): void {
    this.#responders.push({ match, answer });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.on('error', () => {});
    req.on('error', () => {});
    const r: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/' };
    if (this.#stalls.some((m) => m(r))) {
      this.stalled += 1;
      req.resume();
      return; // never answered; `close` destroys the socket
    }
    const body = await readAll(req);
    const responder = this.#responders.find((x) => x.match(r));
    if (responder) {
      const answer = await responder.answer(async () => (await this.#forward(req, body)).body);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.status === 204 ? undefined : JSON.stringify(answer.body));
      return;
    }
    try {
      const up = await this.#forward(req, body);
      res.writeHead(up.status, up.headers);
      res.end(up.body);
    } catch {
      res.destroy();
    }
  }

  #forward(
    req: http.IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      headers['content-length'] = String(body.length);
      const up = http.request(
        { socketPath: this.target, method: req.method, path: req.url, headers },
        async (r) => {
          const data = await readAll(r);
          const out = { ...r.headers };
          delete out['transfer-encoding'];
          out['content-length'] = String(data.length);
          resolve({ status: r.statusCode ?? 502, headers: out, body: data });
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function rawHead(req: http.IncomingMessage): string {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
