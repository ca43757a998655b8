import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { EgressProxy, Resolver, parseAllowlist } from '@berth/egress';
import { percentile, time, type Row } from './harness.js';

const BODY = Buffer.alloc(10 * 1024 * 1024, 'x');
const PLACEHOLDER = 'berth_secret_' + '0'.repeat(48);

/** GET / over an open TLS stream; resolves with the body's length once the server closes. */
function fetchOver(socket: tls.TLSSocket, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    let head = true;
    socket.on('data', (c: Buffer) => {
      if (head) {
        const end = c.indexOf('\r\n\r\n');
        if (end >= 0) {
          head = false;
          n += c.length - end - 4;
        }
      } else n += c.length;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(n));
    socket.write(
      `GET / HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`,
    );
  });
}

/** CONNECT through a sandbox's socket, then TLS trusting `ca`. */
async function viaProxy(socketPath: string, host: string, ca: string): Promise<number> {
  const raw = net.connect(socketPath);
  raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    raw.once('data', (c: Buffer) =>
      String(c).startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(String(c))),
    );
    raw.once('error', reject);
  });
  const secure = tls.connect({ socket: raw, servername: host, ca });
  await new Promise<void>((r, j) => secure.once('secureConnect', r).once('error', j));
  return fetchOver(secure, host);
}

/**
 * 10 MB over HTTPS from a local upstream: directly, through a plain CONNECT tunnel (a domain with
 * no secret), and through TLS interception (a domain with a secret: two TLS sessions and a parse).
 */
export async function benchEgressTls(runs = 15): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-egress-tls-bench-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=bench']
      .concat(['-addext', 'subjectAltName=DNS:plain.bench.test,DNS:secret.bench.test'])
      .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
    { stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const upstream = https.createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert },
    (_req, res) => res.end(BODY),
  );
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const proxy = new EgressProxy({
    runDir: dir,
    resolver: new Resolver({
      testUpstreams: new Map([
        ['plain.bench.test:443', { host: '127.0.0.1', port }],
        ['secret.bench.test:443', { host: '127.0.0.1', port }],
      ]),
    }),
    upstreamCa: [cert],
  });
  const id = 'cntr_' + 't'.repeat(48);
  const parsed = parseAllowlist(['plain.bench.test', 'secret.bench.test'], { maxEntries: 2 });
  if (!parsed.ok) throw new Error(parsed.message);
  await proxy.attach(id, parsed.rules, [
    { domain: 'secret.bench.test', placeholder: PLACEHOLDER, value: 'sk-bench' },
  ]);
  const socketPath = join(proxy.hostDir(id), 'egress.sock');
  const sandboxCa = readFileSync(join(proxy.hostDir(id), 'ca.pem'), 'utf8');
  try {
    const direct: number[] = [];
    const tunnel: number[] = [];
    const intercepted: number[] = [];
    const check = (n: number) => {
      if (n !== BODY.length) throw new Error(`fetched ${n} bytes`);
    };
    for (let i = 0; i < runs; i++) {
      const [d, dn] = await time(async () => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'plain.bench.test',
          ca: cert,
        });
        await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
        return fetchOver(s, 'plain.bench.test');
      });
      check(dn);
      direct.push(d);
      const [t, tn] = await time(() => viaProxy(socketPath, 'plain.bench.test', cert));
      check(tn);
      tunnel.push(t);
      const [x, xn] = await time(() => viaProxy(socketPath, 'secret.bench.test', sandboxCa));
      check(xn);
      intercepted.push(x);
    }
    const d = percentile(direct, 50);
    const t = percentile(tunnel, 50);
    const x = percentile(intercepted, 50);
    return [
      { name: 'egress HTTPS 10 MB p50: direct from the host', value: d, unit: 'ms' },
      { name: 'egress HTTPS 10 MB p50: plain CONNECT tunnel', value: t, unit: 'ms' },
      { name: 'egress HTTPS 10 MB p50: TLS-intercepted (secret)', value: x, unit: 'ms' },
      { name: 'egress HTTPS 10 MB p50: ratio intercepted/tunnel', value: x / t, unit: 'x' },
    ];
  } finally {
    await proxy.detach(id);
    await proxy.close();
    upstream.closeAllConnections();
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
