import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowlist } from './allowlist.js';
import { EgressProxy } from './proxy.js';
import { Resolver } from './resolver.js';
import { SandboxCa } from './sandbox-ca.js';
import { parseUpstreamProxy } from './upstream.js';

const A = 'cntr_' + 'c'.repeat(20);
const SECRET = 'sk-live-0123456789abcdef';
const PLACEHOLDER = 'berth_secret_' + 'ab'.repeat(24);

let runDir: string;
let upstream: https.Server;
let upstreamPort: number;
let upstreamCaPem: string;
let proxy: EgressProxy;
/** Every request head the upstream saw, as `host path authorization`. */
const seen: string[] = [];

beforeAll(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'berth-intercept-test-'));
  const upstreamCa = await SandboxCa.create('upstream');
  const contexts = new Map<string, tls.SecureContext>();
  for (const h of ['secret.test', 'plain.test']) contexts.set(h, await upstreamCa.contextFor(h));
  upstream = https.createServer(
    { SNICallback: (name, cb) => cb(null, contexts.get(name)) },
    (req, res) => {
      seen.push(
        `${req.headers.host} ${req.url} ${req.headers.authorization ?? '-'} ${req.headers['x-key'] ?? '-'}`,
      );
      if (req.url === '/redirect') {
        res.writeHead(302, { location: 'https://plain.test/landing' }).end();
        return;
      }
      req.resume();
      req.on('end', () => res.end(`ok ${req.url}`));
    },
  );
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  upstreamPort = port;
  upstreamCaPem = upstreamCa.certPem;
  const parsed = parseAllowlist(['secret.test', 'plain.test'], { maxEntries: 10 });
  if (!parsed.ok) throw new Error(parsed.message);
  proxy = new EgressProxy({
    runDir,
    resolver: new Resolver({
      testUpstreams: new Map([
        ['secret.test:443', { host: '127.0.0.1', port }],
        ['plain.test:443', { host: '127.0.0.1', port }],
      ]),
    }),
    upstreamCa: [upstreamCa.certPem],
  });
  await proxy.attach(A, parsed.rules, [
    { domain: 'secret.test', placeholder: PLACEHOLDER, value: SECRET },
  ]);
});

afterAll(async () => {
  await proxy?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((r) => upstream?.close(() => r()));
  await rm(runDir, { recursive: true, force: true });
});

/** CONNECT through the sandbox's socket, then TLS trusting only the sandbox's CA. */
async function request(
  connectTo: string,
  raw: string,
  servername = connectTo,
  via = proxy,
): Promise<string> {
  const s = net.connect(join(via.hostDir(A), 'egress.sock'));
  s.write(`CONNECT ${connectTo}:443 HTTP/1.1\r\nHost: ${connectTo}:443\r\n\r\n`);
  const answer = await new Promise<string>((resolve) => s.once('data', (c) => resolve(String(c))));
  if (!answer.startsWith('HTTP/1.1 200')) {
    s.destroy();
    return answer.split('\r\n')[0]!;
  }
  const ca = await readFile(join(via.hostDir(A), 'ca.pem'), 'utf8');
  const t = tls.connect({
    socket: s,
    servername,
    ca,
    rejectUnauthorized: connectTo === servername,
  });
  let text = '';
  t.on('data', (c: Buffer) => (text += c.toString()));
  return new Promise((resolve) => {
    t.on('error', () => resolve(text || 'tls-error'));
    t.on('close', () => resolve(text));
    t.once('secureConnect', () => t.write(raw));
  });
}

const get = (host: string, path: string, headers: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers}Connection: close\r\n\r\n`;

describe('TLS interception of a domain with a secret', () => {
  it('puts the secret into headers to its domain only, and counts it', async () => {
    seen.length = 0;
    const a = await request(
      'secret.test',
      get(
        'secret.test',
        '/x',
        `Authorization: Bearer ${PLACEHOLDER}\r\nX-Key: k=${PLACEHOLDER}\r\n`,
      ),
    );
    expect(a).toMatch(/^HTTP\/1.1 200/);
    expect(a).toContain('ok /x');
    expect(seen).toEqual([`secret.test /x Bearer ${SECRET} k=${SECRET}`]);
    // Another allowlisted host gets a plain tunnel: its TLS is the upstream's own, not ours.
    const b = await request(
      'plain.test',
      get('plain.test', '/y', `Authorization: Bearer ${PLACEHOLDER}\r\n`),
      'plain.test',
    );
    expect(b).toBe('tls-error'); // the sandbox CA doesn't vouch for plain.test: nothing minted
    expect(proxy.stats(A)!.substitutions).toEqual({ 'secret.test': 2 });
    // Each intercepted request's upstream connection ends with it: none is left behind.
    await expect.poll(() => new Promise((r) => upstream.getConnections((_e, n) => r(n)))).toBe(0);
  });

  it('never rewrites the URL or body, nor answers back, nor follows redirects', async () => {
    seen.length = 0;
    const body = `token=${PLACEHOLDER}`;
    const a = await request(
      'secret.test',
      `POST /p?q=${PLACEHOLDER} HTTP/1.1\r\nHost: secret.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(a).toContain(`ok /p?q=${PLACEHOLDER}`);
    const r = await request(
      'secret.test',
      get('secret.test', '/redirect', `Authorization: ${PLACEHOLDER}\r\n`),
    );
    expect(r).toMatch(/^HTTP\/1.1 302/);
    expect(r).toContain('location: https://plain.test/landing');
    expect(seen).toEqual([
      `secret.test /p?q=${PLACEHOLDER} - -`,
      `secret.test /redirect ${SECRET} -`,
    ]);
  });

  it('judges each pipelined request by its Host, and drops headers named by Connection', async () => {
    seen.length = 0;
    const a = await request(
      'secret.test',
      get(
        'secret.test',
        '/1',
        `Authorization: ${PLACEHOLDER}\r\nConnection: keep-alive, x-key\r\nX-Key: ${PLACEHOLDER}\r\n`,
      ).replace('Connection: close\r\n', '') +
        get('plain.test', '/2', `Authorization: ${PLACEHOLDER}\r\n`) +
        get('secret.test', '/3', ''),
    );
    expect(a).toMatch(/^HTTP\/1.1 200/);
    expect(a).toContain('421 Misdirected Request');
    expect(seen).toEqual([`secret.test /1 ${SECRET} -`]);
  });

  it('cuts off TLS that names another host than the CONNECT target', async () => {
    seen.length = 0;
    const a = await request(
      'secret.test',
      get('plain.test', '/', `Authorization: ${PLACEHOLDER}\r\n`),
      'plain.test',
    );
    expect(a).not.toContain('ok');
    expect(seen).toEqual([]);
    expect(proxy.stats(A)!.recent.at(-1)).toMatchObject({
      decision: 'denied',
      host: 'secret.test',
    });
  });

  it('refuses a domain whose secret could not be unsealed, rather than send the placeholder', async () => {
    const B = 'cntr_' + 'd'.repeat(20);
    const parsed = parseAllowlist(['secret.test'], { maxEntries: 10 });
    if (!parsed.ok) throw new Error(parsed.message);
    await proxy.attach(B, parsed.rules, [
      { domain: 'secret.test', placeholder: PLACEHOLDER, value: null },
    ]);
    try {
      const s = net.connect(join(proxy.hostDir(B), 'egress.sock'));
      s.write('CONNECT secret.test:443 HTTP/1.1\r\nHost: secret.test:443\r\n\r\n');
      const answer = await new Promise<string>((r) => s.once('data', (c) => r(String(c))));
      s.destroy();
      expect(answer).toMatch(/^HTTP\/1.1 403/);
      expect(proxy.stats(B)!.recent.at(-1)).toMatchObject({
        decision: 'denied',
        host: 'secret.test',
      });
    } finally {
      await proxy.detach(B);
    }
  });

  it('keeps the CA key out of the egress directory', async () => {
    const dir = proxy.hostDir(A);
    const files = await readdir(dir);
    expect(files.sort()).toEqual(['ca-bundle.pem', 'ca.pem', 'egress.sock']);
    for (const f of ['ca-bundle.pem', 'ca.pem'])
      expect(await readFile(join(dir, f), 'utf8')).not.toMatch(/PRIVATE KEY/);
  });
});

describe('BERTH_EGRESS_UPSTREAM_PROXY', () => {
  it('reads http://[user:pass@]host:port and nothing else', () => {
    expect(parseUpstreamProxy('http://u:p%40ss@proxy.corp:3128')).toEqual({
      host: 'proxy.corp',
      port: 3128,
      authorization: `Basic ${Buffer.from('u:p@ss').toString('base64')}`,
    });
    expect(parseUpstreamProxy('http://[::1]:8080/')).toEqual({ host: '::1', port: 8080 });
    for (const bad of ['https://proxy:443', 'proxy:3128', 'http://proxy:3128/path', 'socks5://p:1'])
      expect(() => parseUpstreamProxy(bad)).toThrow();
  });

  it("chains every connection through the proxy by name, the allowlist still Berth's", async () => {
    const connects: string[] = [];
    // A tiny CONNECT proxy on loopback: it knows the test names; Berth never resolves them.
    const open = new Set<net.Socket>();
    const corp = net.createServer((s) => {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
      let head = '';
      const onData = (c: Buffer) => {
        head += c.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        const target = /^CONNECT (\S+) /.exec(head)?.[1] ?? '';
        connects.push(`${target} ${/proxy-authorization: (\S+ \S+)/i.exec(head)?.[1] ?? '-'}`);
        const out = net.connect(upstreamPort, '127.0.0.1', () => {
          s.write('HTTP/1.1 200 OK\r\n\r\n');
          s.pipe(out).pipe(s);
        });
        out.on('error', () => s.destroy());
      };
      s.on('data', onData);
    });
    await new Promise<void>((r) => corp.listen(0, '127.0.0.1', r));
    const dir = await mkdtemp(join(tmpdir(), 'berth-upstream-proxy-test-'));
    const chained = new EgressProxy({
      runDir: dir,
      resolver: new Resolver({
        lookup: async () => {
          throw new Error('Berth must not resolve names behind an upstream proxy');
        },
      }),
      upstreamCa: [upstreamCaPem],
      upstreamProxy: parseUpstreamProxy(
        `http://user:pw@127.0.0.1:${(corp.address() as AddressInfo).port}`,
      ),
    });
    try {
      const parsed = parseAllowlist(['secret.test', 'plain.test'], { maxEntries: 10 });
      if (!parsed.ok) throw new Error(parsed.message);
      await chained.attach(A, parsed.rules, [
        { domain: 'secret.test', placeholder: PLACEHOLDER, value: SECRET },
      ]);
      seen.length = 0;
      const a = await request(
        'secret.test',
        get('secret.test', '/via', `Authorization: ${PLACEHOLDER}\r\n`),
        'secret.test',
        chained,
      );
      expect(a).toContain('ok /via');
      expect(seen).toEqual([`secret.test /via ${SECRET} -`]);
      expect(await request('elsewhere.test', '', 'elsewhere.test', chained)).toBe(
        'HTTP/1.1 403 Forbidden',
      );
      const auth = `Basic ${Buffer.from('user:pw').toString('base64')}`;
      expect(connects).toEqual([`secret.test:443 ${auth}`]);
    } finally {
      await chained.close();
      for (const s of open) s.destroy();
      await new Promise<void>((r) => corp.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
