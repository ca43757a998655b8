import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from './exchange.js';
import { rawExchange } from './raw-exchange.js';
import type { Decision } from './stats.js';
import type { UpstreamProxy } from './upstream.js';

/** What the raw upstream does with one connection, once it has read the request head. */
type Behaviour = (socket: net.Socket, head: string) => void;

let behave: Behaviour;
let raw: net.Server;
let web: http.Server;
let relay: http.Server;
let decisions: Omit<Decision, 'containerId'>[];
const upstreamSockets = new Set<net.Socket>();

beforeEach(async () => {
  decisions = [];
  raw = net.createServer((s) => {
    upstreamSockets.add(s);
    s.on('error', () => {});
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      behave(s, head.slice(0, end));
    };
    s.on('data', onData);
  });
  // Echoes what it was sent: method, framing, and the body's length.
  web = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      const text = `${req.method} te=${req.headers['transfer-encoding'] ?? '-'} cl=${req.headers['content-length'] ?? '-'} read=${n}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(text) }).end(text);
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
});

afterEach(async () => {
  for (const s of upstreamSockets) s.destroy();
  upstreamSockets.clear();
  for (const s of [relay, web]) s.closeAllConnections();
  for (const s of [relay, web, raw])
    await new Promise<void>((r) => (s as net.Server).close(() => r()));
});

/** A relay on loopback: each request forwarded raw to `upstream`, as the proxy's forwards are. */
async function start(
  upstream: net.Server,
  idleMs = 5_000,
  upstreamProxy?: UpstreamProxy,
): Promise<number> {
  const ex: Exchange = {
    judge: () => Promise.reject(new Error('not judged here')),
    record: (d) => decisions.push(d),
    idleMs,
    ...(upstreamProxy ? { upstreamProxy } : {}),
  };
  const port = (upstream.address() as AddressInfo).port;
  relay = http.createServer((req, res) => {
    req.on('error', () => {});
    res.on('error', () => {});
    rawExchange(
      ex,
      {
        host: 'web.test',
        port: 80,
        // Through an upstream proxy the target is the name, as the proxy's judge gives it.
        target: upstreamProxy ? { address: 'web.test', port: 80 } : { address: '127.0.0.1', port },
        authority: 'web.test',
        path: req.url ?? '/',
      },
      req,
      res,
    );
  });
  relay.timeout = idleMs;
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return (relay.address() as AddressInfo).port;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function fetch(
  port: number,
  options: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders } = {},
  body?: string[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', agent: false, ...options },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    for (const part of body ?? []) req.write(part);
    req.end();
  });
}

async function recorded(): Promise<Omit<Decision, 'containerId'>> {
  while (decisions.length === 0) await new Promise((r) => setTimeout(r, 5));
  return decisions[0]!;
}

describe('rawExchange', () => {
  it('relays a content-length answer with its end-to-end headers, and records it once', async () => {
    let sent = '';
    behave = (s, head) => {
      sent = head;
      s.end(
        'HTTP/1.1 201 Created\r\nX-Kept: yes\r\nKeep-Alive: timeout=5\r\nConnection: x-hop, keep-alive\r\n' +
          'X-Hop: dropped\r\nContent-Length: 5\r\n\r\nhello',
      );
    };
    const port = await start(raw);
    const answer = await fetch(port, {
      path: '/p?q=1',
      headers: { 'x-up': 'kept', 'proxy-authorization': 'Basic eA==', te: 'trailers' },
    });
    expect(answer).toMatchObject({ status: 201, body: 'hello' });
    expect(answer.headers).toMatchObject({ 'x-kept': 'yes', connection: 'close' });
    expect(answer.headers['keep-alive']).toBeUndefined();
    expect(answer.headers['x-hop']).toBeUndefined();
    expect(sent).toMatch(/^GET \/p\?q=1 HTTP\/1\.1\r\nHost: web\.test\r\n/);
    expect(sent).toMatch(/\r\nx-up: kept\r\n/i);
    expect(sent).not.toMatch(/proxy-authorization|\r\nte:/i);
    expect(sent).toMatch(/\r\nConnection: close$/);
    expect(await recorded()).toEqual({
      decision: 'allowed',
      host: 'web.test',
      port: 80,
      bytesUp: 0,
      bytesDown: 5,
    });
    expect(decisions).toHaveLength(1);
  });

  it('ends a content-length answer at its length, even if the upstream keeps its connection', async () => {
    behave = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef');
    const port = await start(raw);
    expect(await fetch(port)).toMatchObject({ status: 200, body: 'abc' });
    expect((await recorded()).bytesDown).toBe(3);
  });

  it('relays a large body intact to a client that reads slowly (read buffers are reused)', async () => {
    const body = randomBytes(6 * 1024 * 1024);
    behave = (s) =>
      s.end(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
          body,
        ]),
      );
    const port = await start(raw);
    const got = await new Promise<Buffer>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            parts.push(c);
            // Now and then the client stops reading, so the proxy holds reads for it.
            if (parts.length % 16 === 0) {
              res.pause();
              setTimeout(() => res.resume(), 20);
            }
          });
          res.on('end', () => resolve(Buffer.concat(parts)));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    expect(got.equals(body)).toBe(true);
    expect((await recorded()).bytesDown).toBe(body.length);
  });

  it('relays a chunked answer in its own framing, which the client decodes', async () => {
    behave = (s) =>
      s.end(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n' +
          '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      );
    const port = await start(raw);
    const answer = await fetch(port);
    expect(answer).toMatchObject({ status: 200, body: 'hello world' });
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.headers['content-length']).toBeUndefined();
    expect(await recorded()).not.toHaveProperty('reason');
  });

  it('asks in HTTP/1.0 for an HTTP/1.0 client, so no chunked answer reaches a client that cannot read it', async () => {
    // node's own server chunks a length-less answer for 1.1 and closes-delimits it for 1.0.
    const web10 = http.createServer((req, res) => {
      res.write(`asked in ${req.httpVersion}: `);
      res.end('hello');
    });
    await new Promise<void>((r) => web10.listen(0, '127.0.0.1', r));
    try {
      const port = await start(web10);
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, '127.0.0.1', () =>
          c.write('GET http://web.test/ HTTP/1.0\r\nHost: web.test\r\n\r\n'),
        );
        let text = '';
        c.on('data', (d: Buffer) => (text += d.toString('latin1')));
        c.on('end', () => resolve(text));
        c.on('error', reject);
      });
      expect(reply).toMatch(/^HTTP\/1\.1 200 /);
      expect(reply).not.toMatch(/transfer-encoding/i);
      expect(reply.slice(reply.indexOf('\r\n\r\n') + 4)).toBe('asked in 1.0: hello');
    } finally {
      web10.closeAllConnections();
      await new Promise<void>((r) => web10.close(() => r()));
    }
  });

  it('answers a HEAD with the head alone, without waiting for the upstream to close', async () => {
    behave = (s, head) => {
      expect(head).toMatch(/^HEAD \//);
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
    };
    const port = await start(raw);
    const answer = await fetch(port, { method: 'HEAD' });
    expect(answer).toMatchObject({ status: 200, body: '' });
    expect(answer.headers['content-length']).toBe('100');
    expect(await recorded()).toMatchObject({ bytesDown: 0 });
  });

  it('answers 204 and 304 without a body, without waiting for the upstream to close', async () => {
    for (const status of ['204 No Content', '304 Not Modified']) {
      decisions = [];
      behave = (s) => s.write(`HTTP/1.1 ${status}\r\nX-N: 1\r\n\r\n`);
      const port = await start(raw);
      expect(await fetch(port)).toMatchObject({ status: Number(status.slice(0, 3)), body: '' });
      expect(await recorded()).not.toHaveProperty('reason');
      relay.closeAllConnections();
      await new Promise<void>((r) => relay.close(() => r()));
    }
    await start(raw);
  });

  it('skips an interim answer and relays the final one', async () => {
    behave = (s) =>
      s.end(
        'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      );
    const port = await start(raw);
    expect(await fetch(port)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('sends a body with a content-length up as it came', async () => {
    const port = await start(web);
    const answer = await fetch(port, { method: 'POST', headers: { 'content-length': '11' } }, [
      'hello ',
      'world',
    ]);
    expect(answer.body).toBe('POST te=- cl=11 read=11');
    expect(await recorded()).toMatchObject({ bytesUp: 11, bytesDown: answer.body.length });
  });

  it('sends a chunked body up chunked', async () => {
    const port = await start(web);
    const answer = await fetch(port, { method: 'POST' }, ['hello ', 'chunked ', 'world']);
    expect(answer.body).toBe('POST te=chunked cl=- read=19');
    expect((await recorded()).bytesUp).toBe(19);
  });

  it('cuts the client off when the upstream closes in the middle of a content-length body', async () => {
    behave = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
    const port = await start(raw);
    await expect(fetch(port)).rejects.toThrow();
    expect((await recorded()).reason).toBe('upstream: the answer was cut short');
  });

  it('cuts the client off when the upstream closes in the middle of a chunked body', async () => {
    behave = (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nonly part');
    const port = await start(raw);
    await expect(fetch(port)).rejects.toThrow();
  });

  it('answers 502 to a garbage answer, a malformed header, a bad length, or an oversized head', async () => {
    const garbage = [
      'SSH-2.0-OpenSSH_9.6\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Header\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx',
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}`,
    ];
    const port = await start(raw);
    for (const text of garbage) {
      decisions = [];
      behave = (s) => s.write(text);
      const answer = await fetch(port);
      expect(answer.status).toBe(502);
      expect(answer.body).toMatch(/^berth egress: upstream: /);
      expect((await recorded()).reason).toMatch(/^upstream: /);
    }
  });

  it('answers 502 when the upstream closes before answering, or refuses the connection', async () => {
    behave = (s) => s.end();
    const port = await start(raw);
    expect(await fetch(port)).toMatchObject({
      status: 502,
      body: 'berth egress: upstream: closed before answering\n',
    });
    decisions = [];
    await new Promise<void>((r) => raw.close(() => r()));
    expect((await fetch(port)).status).toBe(502);
    expect((await recorded()).reason).toMatch(/^upstream: .*ECONNREFUSED/);
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  });

  it('answers 504 when the upstream says nothing for idleMs, and ends the upstream', async () => {
    behave = () => {};
    const port = await start(raw, 100);
    expect(await fetch(port)).toMatchObject({
      status: 504,
      body: 'berth egress: closed after 100 ms without traffic\n',
    });
    expect(decisions.map((d) => d.reason)).toEqual(['closed after 100 ms without traffic']);
    while (![...upstreamSockets].every((s) => s.destroyed))
      await new Promise((r) => setTimeout(r, 5));
  });

  it('cuts an answer that falls silent for idleMs once its head is sent', async () => {
    behave = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    const port = await start(raw, 100);
    await expect(fetch(port)).rejects.toThrow();
    expect((await recorded()).reason).toBe('closed after 100 ms without traffic');
  });

  it('ends the upstream when the client goes away', async () => {
    behave = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
    const port = await start(raw);
    await new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) =>
        res.once('data', () => {
          req.destroy();
          resolve();
        }),
      );
      req.on('error', () => {});
    });
    expect((await recorded()).reason).toBe('the client went away');
    while (![...upstreamSockets].every((s) => s.destroyed))
      await new Promise((r) => setTimeout(r, 5));
  });

  it('goes through the upstream proxy by CONNECT with the name, when there is one', async () => {
    const connects: string[] = [];
    const corp = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', (c: Buffer) => {
        connects.push(c.toString('latin1').split('\r\n')[0]!);
        const out = net.connect((raw.address() as AddressInfo).port, '127.0.0.1', () => {
          s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          s.pipe(out).pipe(s);
        });
        out.on('error', () => s.destroy());
        s.on('close', () => out.destroy());
      });
    });
    await new Promise<void>((r) => corp.listen(0, '127.0.0.1', r));
    try {
      behave = (s, head) =>
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n${head.slice(0, 4)}`);
      const port = await start(raw, 5_000, {
        host: '127.0.0.1',
        port: (corp.address() as AddressInfo).port,
      });
      expect(await fetch(port)).toMatchObject({ status: 200, body: 'GET ' });
      expect(connects).toEqual(['CONNECT web.test:80 HTTP/1.1']);
    } finally {
      corp.close();
    }
  });
});
