import { mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllowlist } from './allowlist.js';
import { EgressProxy, type EgressProxyOptions } from './proxy.js';
import { Resolver } from './resolver.js';
import type { EgressStats } from './stats.js';

const A = 'cntr_' + 'a'.repeat(20);
const B = 'cntr_' + 'b'.repeat(20);
const rules = (() => {
  const parsed = parseAllowlist(['echo.test', 'web.test'], { maxEntries: 10 });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.rules;
})();

let runDir: string;
let echo: net.Server;
let web: http.Server;
/** What `web` does with `/hang` and `/stream`: kept so each test can end them. */
const held = new Set<http.ServerResponse>();
let proxy: EgressProxy | undefined;
const upstreams = new Map<string, { host: string; port: number }>();

beforeEach(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'berth-egress-test-'));
  echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  web = http.createServer((req, res) => {
    if (req.url === '/hang') held.add(res);
    else if (req.url === '/stream') {
      held.add(res);
      res.writeHead(200);
      const tick = setInterval(() => res.write('x'.repeat(1024)), 10);
      res.on('close', () => clearInterval(tick));
    } else res.end(`hello ${req.url}`);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  upstreams.set('echo.test:443', { host: '127.0.0.1', port: (echo.address() as AddressInfo).port });
  upstreams.set('web.test:80', { host: '127.0.0.1', port: (web.address() as AddressInfo).port });
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const res of held) res.destroy();
  held.clear();
  web.closeAllConnections();
  await new Promise<void>((r) => web.close(() => r()));
  await new Promise<void>((r) => echo.close(() => r()));
  await rm(runDir, { recursive: true, force: true });
});

async function start(options: Partial<EgressProxyOptions> = {}, ids = [A]): Promise<EgressProxy> {
  proxy = new EgressProxy({
    runDir,
    resolver: new Resolver({ testUpstreams: upstreams }),
    ...options,
  });
  for (const id of ids) await proxy.attach(id, rules);
  return proxy;
}

const socketOf = (p: EgressProxy, id: string) => join(p.hostDir(id), 'egress.sock');

/** Reads a socket until it closes; resolves with everything it said. */
function drain(s: net.Socket): Promise<string> {
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString('latin1')));
  return new Promise((resolve) => s.on('close', () => resolve(text)));
}

/** Opens a CONNECT tunnel to echo.test:443 and waits for the proxy's 200. */
async function tunnel(path: string): Promise<net.Socket> {
  const s = net.connect(path);
  s.on('error', () => {});
  s.write('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
  const first = await new Promise<string>((resolve, reject) => {
    s.once('data', (c: Buffer) => resolve(c.toString('latin1')));
    s.once('close', () => reject(new Error('closed before answering')));
  });
  expect(first).toMatch(/^HTTP\/1\.1 200 /);
  return s;
}

async function roundTrip(s: net.Socket, text: string): Promise<string> {
  s.write(text);
  return new Promise((resolve) => s.once('data', (c: Buffer) => resolve(c.toString())));
}

function get(path: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path, path: url, headers: { host: new URL(url).host }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const reasons = (stats: EgressStats | null) => (stats?.recent ?? []).map((d) => d.reason ?? '');

describe('connection caps', () => {
  it("refuses a sandbox's connection past its cap, and takes one again once a slot frees", async () => {
    const p = await start({ maxConnectionsPerSandbox: 2 });
    const path = socketOf(p, A);
    const first = await tunnel(path);
    const second = await tunnel(path);
    const third = net.connect(path);
    const said = await drain(third);
    expect(said).toMatch(/^HTTP\/1\.1 429 /);
    expect(said).toContain('too many connections');
    expect(p.stats(A)?.denied).toBe(1);
    expect(reasons(p.stats(A))).toContainEqual(expect.stringMatching(/too many connections/));
    // The two within the cap still work.
    expect(await roundTrip(second, 'ping')).toBe('ping');
    first.destroy();
    await until(() => (p.stats(A)?.allowed ?? 0) === 1);
    const again = await tunnel(path);
    expect(await roundTrip(again, 'pong')).toBe('pong');
    second.destroy();
    again.destroy();
  });

  it('refuses past the cap across sandboxes, whichever sandbox asks', async () => {
    const p = await start({ maxConnectionsPerSandbox: 2, maxConnections: 3 }, [A, B]);
    const held = [await tunnel(socketOf(p, A)), await tunnel(socketOf(p, A))];
    held.push(await tunnel(socketOf(p, B)));
    const said = await drain(net.connect(socketOf(p, B)));
    expect(said).toMatch(/^HTTP\/1\.1 429 /);
    expect(reasons(p.stats(B))).toEqual([expect.stringMatching(/cap across sandboxes is 3/)]);
    expect(p.stats(A)?.denied).toBe(0);
    for (const s of held) s.destroy();
  });
});

describe('timeouts', () => {
  it('closes a tunnel silent both ways, and records why', async () => {
    const p = await start({ idleTimeoutMs: 200 });
    const s = await tunnel(socketOf(p, A));
    const closed = drain(s);
    expect(await roundTrip(s, 'hi')).toBe('hi');
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await until(() => reasons(p.stats(A)).some((r) => /200 ms without traffic/.test(r)));
  });

  it('keeps a tunnel that keeps talking past the idle timeout', async () => {
    const p = await start({ idleTimeoutMs: 200 });
    const s = await tunnel(socketOf(p, A));
    for (let i = 0; i < 6; i++) {
      expect(await roundTrip(s, `n${i}`)).toBe(`n${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(s.destroyed).toBe(false);
    s.destroy();
  });

  it('closes a plain HTTP exchange whose upstream never answers', async () => {
    const p = await start({ idleTimeoutMs: 200 });
    const t0 = Date.now();
    const answer = await get(socketOf(p, A), 'http://web.test/hang');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(answer).toEqual({
      status: 504,
      body: 'berth egress: closed after 200 ms without traffic\n',
    });
    expect(reasons(p.stats(A))).toEqual(['closed after 200 ms without traffic']);
    // The upstream exchange was ended too.
    await until(() => [...held].every((res) => res.destroyed));
  });

  it('closes a client that connects and never sends a request', async () => {
    const p = await start({ headersTimeoutMs: 200 });
    const t0 = Date.now();
    const said = await drain(net.connect(socketOf(p, A)));
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(said).toMatch(/^HTTP\/1\.1 408 /);
    expect(reasons(p.stats(A))).toEqual([
      'no complete request in time (head 200 ms, whole 300000 ms)',
    ]);
  });

  it('closes a client that stops halfway through its request line', async () => {
    const p = await start({ headersTimeoutMs: 200 });
    const s = net.connect(socketOf(p, A));
    s.write('CONNECT echo.te');
    await drain(s);
    expect(p.stats(A)?.denied).toBe(1);
  });
});

describe('attach', () => {
  // Listening Unix sockets and their connections (the test's own TCP servers are not pipes).
  const listeningPipes = () =>
    process.getActiveResourcesInfo().filter((r) => r === 'PipeWrap').length;

  it('runs one server when the same sandbox is attached twice at once, with the later rules', async () => {
    const before = listeningPipes();
    proxy = new EgressProxy({ runDir, resolver: new Resolver({ testUpstreams: upstreams }) });
    const onlyWeb = parseAllowlist(['web.test'], { maxEntries: 1 });
    if (!onlyWeb.ok) throw new Error(onlyWeb.message);
    await Promise.all([proxy.attach(A, rules), proxy.attach(A, onlyWeb.rules)]);
    expect(proxy.attachedIds()).toEqual([A]);
    expect(listeningPipes()).toBe(before + 1);
    const s = net.connect(socketOf(proxy, A));
    s.write('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
    expect(await drain(s)).toMatch(/^HTTP\/1\.1 403 /);
    await proxy.close();
    await until(() => listeningPipes() === before);
  });

  it('serves a sandbox in a directory made before it (a pool slot’s), keyed by the container', async () => {
    proxy = new EgressProxy({ runDir, resolver: new Resolver({ testUpstreams: upstreams }) });
    const slot = 'pool_' + 'c'.repeat(24);
    await proxy.prepareDir(slot);
    expect((await stat(proxy.hostDir(slot))).isDirectory()).toBe(true);
    expect(await proxy.dirKeys()).toEqual([slot]);
    await proxy.attach(A, rules, [], slot);
    expect(await proxy.dirKeys()).toEqual([slot]);
    const s = await tunnel(join(proxy.hostDir(slot), 'egress.sock'));
    expect(await roundTrip(s, 'ping')).toBe('ping');
    s.destroy();
    expect(proxy.attachedIds()).toEqual([A]);
    await until(() => (proxy?.stats(A)?.recent.length ?? 0) === 1);
    expect(proxy.stats(A)?.recent[0]).toMatchObject({ containerId: A, decision: 'allowed' });
    expect(proxy.stats(slot)).toBeNull();
    // Detached by the container id alone, the slot's directory goes with it.
    await proxy.detach(A);
    expect(await proxy.dirKeys()).toEqual([]);
    // And a slot never attached is removed by its own name.
    await proxy.prepareDir(slot);
    await proxy.detach(slot);
    expect(await proxy.dirKeys()).toEqual([]);
  });

  it('refuses a cap or timeout that is not a positive integer', () => {
    const resolver = new Resolver();
    expect(() => new EgressProxy({ runDir, resolver, maxConnections: 0 })).toThrow(
      /maxConnections/,
    );
    expect(() => new EgressProxy({ runDir, resolver, idleTimeoutMs: 1.5 })).toThrow(
      /idleTimeoutMs/,
    );
  });
});

describe('socket access', () => {
  it('gives the socket to the forwarder uid alone when an owner is set', async () => {
    const p = await start({ socketOwner: { uid: 65534, gid: 65534 } });
    const info = await stat(socketOf(p, A));
    expect(info.isSocket()).toBe(true);
    expect(info.uid).toBe(65534);
    expect(info.gid).toBe(65534);
    expect(info.mode & 0o777).toBe(0o600);
    expect((await stat(p.hostDir(A))).mode & 0o777).toBe(0o755);
    // Root still reaches it (the test runs as root); the point is that uid 1000 can't.
    expect(await roundTrip(await tunnel(socketOf(p, A)), 'x')).toBe('x');
  });

  it('leaves the socket open to all when no owner is set', async () => {
    const p = await start();
    expect((await stat(socketOf(p, A))).mode & 0o777).toBe(0o666);
  });
});

describe('a client that goes away', () => {
  it('mid-tunnel leaves the proxy serving the next one', async () => {
    const p = await start();
    const s = await tunnel(socketOf(p, A));
    s.write('a'.repeat(64 * 1024));
    s.destroy();
    await until(() => (p.stats(A)?.allowed ?? 0) === 1);
    const next = await tunnel(socketOf(p, A));
    expect(await roundTrip(next, 'still here')).toBe('still here');
    next.destroy();
  });

  it('mid-HTTP-forward leaves the proxy serving the next one', async () => {
    const p = await start();
    const gone = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: socketOf(p, A),
          path: 'http://web.test/stream',
          headers: { host: 'web.test' },
          agent: false,
        },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve('cut');
          });
        },
      );
      req.on('error', () => {});
      req.on('close', () => resolve('closed'));
      req.once('error', reject);
      req.end();
    });
    expect(gone).toBe('cut');
    await until(() => reasons(p.stats(A)).includes('the client went away'));
    // The upstream exchange was ended too, not left streaming into nothing.
    await until(() => [...held].every((res) => res.destroyed));
    expect(await get(socketOf(p, A), 'http://web.test/next')).toEqual({
      status: 200,
      body: 'hello /next',
    });
  });

  it('while its name resolves leaves nothing behind', async () => {
    let release!: () => void;
    const resolving = new Promise<void>((r) => (release = r));
    class SlowResolver extends Resolver {
      override async resolve(host: string, port: number) {
        await resolving;
        return super.resolve(host, port);
      }
    }
    proxy = new EgressProxy({ runDir, resolver: new SlowResolver({ testUpstreams: upstreams }) });
    await proxy.attach(A, rules);
    const s = net.connect(socketOf(proxy, A));
    s.write('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    release();
    const p = proxy;
    await until(() => reasons(p.stats(A)).some((r) => /went away before the tunnel/.test(r)));
  });
});

describe('a fault of the proxy itself', () => {
  it('answers 502 to that client, logs it, and keeps serving', async () => {
    const errors: object[] = [];
    class BrokenResolver extends Resolver {
      override resolve(): Promise<{ address: string; port: number }> {
        return Promise.reject(new Error('boom'));
      }
    }
    proxy = new EgressProxy({
      runDir,
      resolver: new BrokenResolver(),
      log: { info: () => {}, warn: () => {}, error: (fields) => errors.push(fields) },
    });
    await proxy.attach(A, rules);
    const path = socketOf(proxy, A);
    const s = net.connect(path);
    s.write('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
    expect(await drain(s)).toMatch(/^HTTP\/1\.1 502 /);
    expect((await get(path, 'http://web.test/x')).status).toBe(502);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({
      containerId: A,
      err: expect.objectContaining({ message: 'boom' }),
    });
  });
});
