import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Exchange } from './exchange.js';
import { endToEnd, relayExchange } from './http-relay.js';
import type { Decision } from './stats.js';

let upstream: http.Server;
let relay: http.Server;
let decisions: Omit<Decision, 'containerId'>[];
const held = new Set<http.ServerResponse>();

/** A relay on loopback: each request re-made to `upstream`, as the proxy's forwards make it. */
async function start(idleMs = 5_000): Promise<number> {
  const ex: Exchange = {
    judge: () => Promise.reject(new Error('not judged here')),
    record: (d) => decisions.push(d),
    idleMs,
  };
  const port = (upstream.address() as AddressInfo).port;
  relay = http.createServer((req, res) => {
    const up = http.request({
      host: '127.0.0.1',
      port,
      method: req.method,
      path: req.url,
      headers: endToEnd(req.headers),
      timeout: idleMs,
      agent: false,
    });
    relayExchange(ex, 'web.test', 80, req, res, up);
  });
  relay.timeout = idleMs;
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return (relay.address() as AddressInfo).port;
}

function fetch(
  port: number,
  path: string,
  body = '',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false },
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
    req.end(body);
  });
}

beforeEach(async () => {
  decisions = [];
  upstream = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      if (req.url === '/hang') return void held.add(res);
      if (req.url === '/short') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('only part');
        return void setImmediate(() => res.destroy());
      }
      res.writeHead(201, { 'x-kept': 'yes', 'keep-alive': 'timeout=5' });
      res.end(`read ${n}`);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
});

afterEach(async () => {
  for (const res of held) res.destroy();
  held.clear();
  for (const s of [relay, upstream]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

describe('relayExchange', () => {
  it('relays the answer with its end-to-end headers, and records both bodies', async () => {
    const port = await start();
    const answer = await fetch(port, '/x', 'twelve bytes');
    expect(answer.status).toBe(201);
    expect(answer.body).toBe('read 12');
    expect(answer.headers['x-kept']).toBe('yes');
    expect(answer.headers['keep-alive']).toBeUndefined();
    expect(decisions).toEqual([
      { decision: 'allowed', host: 'web.test', port: 80, bytesUp: 12, bytesDown: 7 },
    ]);
  });

  it('cuts the client off and records why when the upstream cuts its answer short', async () => {
    const port = await start();
    await expect(fetch(port, '/short')).rejects.toThrow();
    while (decisions.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(decisions[0]?.reason).toMatch(/^upstream: /);
  });

  it('answers 504 when the upstream says nothing for idleMs, and ends the upstream exchange', async () => {
    const port = await start(100);
    const answer = await fetch(port, '/hang');
    expect(answer).toMatchObject({
      status: 504,
      body: 'berth egress: closed after 100 ms without traffic\n',
    });
    expect(decisions.map((d) => d.reason)).toEqual(['closed after 100 ms without traffic']);
    while (![...held].every((res) => res.destroyed)) await new Promise((r) => setTimeout(r, 5));
  });
});
