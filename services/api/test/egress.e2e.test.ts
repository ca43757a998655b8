import http from 'node:http';
import https from 'node:https';
import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import type { ErrorEnvelope } from '@berth/contracts';
import { dockerExec, listenOn, selfSignedCertificate } from '@berth/testkit';
import { errorOf, startBerthFor, test } from './fixtures.js';

/* eslint-disable no-empty-pattern -- a fixture without dependencies destructures nothing. */

const it = test
  // Local upstreams on loopback, reachable from sandboxes only through the proxy, under test names.
  .extend('upstreams', { scope: 'file' }, async ({}, { onCleanup }) => {
    const cert = selfSignedCertificate('allowed.test', [
      'allowed.test',
      'api.wild.test',
      'other.test',
    ]);
    const reply = (scheme: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.end(`hello ${scheme} ${req.headers.host ?? ''}`);
    };
    const httpServer = http.createServer(reply('http'));
    const httpsServer = https.createServer({ key: cert.key, cert: cert.cert }, reply('https'));
    const [httpPort, httpsPort] = await Promise.all([listenOn(httpServer), listenOn(httpsServer)]);
    onCleanup(() => {
      httpServer.close();
      httpsServer.close();
      cert.remove();
    });
    const env = {
      BERTH_EGRESS_TEST_UPSTREAMS: [
        `allowed.test:443=127.0.0.1:${httpsPort}`,
        `allowed.test:80=127.0.0.1:${httpPort}`,
        `api.wild.test:443=127.0.0.1:${httpsPort}`,
        // Reachable for the proxy, never allowed for the sandbox: denial is the policy's doing.
        `other.test:443=127.0.0.1:${httpsPort}`,
        `other.test:80=127.0.0.1:${httpPort}`,
      ].join(','),
      BERTH_EGRESS_TEST_HOSTS:
        'internal.test=10.0.0.1,metadata.test=169.254.169.254,loop.test=127.0.0.1,mixed.test=93.184.216.34,mixed.test=192.168.1.1',
    };
    return { cert, httpPort, env };
  })
  .extend('berth', { scope: 'file' }, ({ upstreams }, { onCleanup }) =>
    startBerthFor(onCleanup, upstreams.env),
  )
  // One sandbox on the allowlist (trusting the upstreams' CA), one with no network at all.
  .extend('sandbox', { scope: 'file' }, async ({ berth, upstreams }) => {
    const allowed = (
      await berth.client.containers.create({
        name: 'allowlisted',
        network_policy: {
          type: 'allowlist',
          allowed_domains: [
            'allowed.test',
            '*.wild.test',
            'internal.test',
            'metadata.test',
            'loop.test',
            'mixed.test',
          ],
        },
      })
    ).id;
    const disabled = (await berth.client.containers.create({ name: 'closed' })).id;
    await berth.client.containers.files.create(allowed, {
      file: await toFile(upstreams.cert.cert, 'ca.pem'),
    });
    return { allowed, disabled };
  });
it.beforeAll(async ({ sandbox: _ }) => {});

const sh = (id: string, script: string) => dockerExec(id, ['sh', '-c', script]);
const curl = (id: string, args: string) =>
  sh(id, `curl -sS --max-time 10 --cacert /mnt/data/ca.pem ${args}`);

describe('allowlist egress, from inside a real sandbox', () => {
  it('reaches an allowed host over HTTPS and HTTP with curl, through the proxy', async ({
    sandbox: { allowed },
  }) => {
    expect((await curl(allowed, 'https://allowed.test/')).stdout).toBe('hello https allowed.test');
    expect((await curl(allowed, 'http://allowed.test/')).stdout).toBe('hello http allowed.test');
    expect((await curl(allowed, 'https://api.wild.test/')).stdout).toBe(
      'hello https api.wild.test',
    );
    // Case and a trailing dot don't change the host (the matching rule): same upstream, same answer.
    expect((await curl(allowed, 'http://ALLOWED.TEST./')).stdout).toMatch(/^hello http /);
  });

  it('reaches it with Python requests and urllib too', async ({ sandbox: { allowed } }) => {
    const r = await sh(
      allowed,
      `python3 -c "
import requests, urllib.request, ssl
print(requests.get('https://allowed.test/', verify='/mnt/data/ca.pem', timeout=10).text)
print(urllib.request.urlopen('http://allowed.test/', timeout=10).read().decode())
"`,
    );
    expect(r.stdout).toBe('hello https allowed.test\nhello http allowed.test\n');
  });

  it.for([
    ['a host not on the list', 'https://other.test/'],
    ['a host not on the list, plain HTTP', 'http://other.test/'],
    ['a suffix lookalike', 'https://allowed.test.evil.test/'],
    ['a prefix lookalike', 'https://evilallowed.test/'],
    ['the apex of a wildcard', 'https://wild.test/'],
    ['userinfo naming the allowed host', 'http://allowed.test@other.test/'],
    ['a port other than 80/443', 'https://allowed.test:8443/'],
    ['CONNECT to an IP literal', 'https://127.0.0.1/'],
    ['an allowed name resolving to a private address', 'https://internal.test/'],
    ['an allowed name resolving to the metadata address', 'http://metadata.test/latest/meta-data/'],
    ['an allowed name resolving to loopback', 'http://loop.test/'],
    ['an allowed name with one private answer among public ones', 'https://mixed.test/'],
  ] as const)('refuses %s', async ([_what, url], { sandbox: { allowed } }) => {
    const r = await curl(allowed, `--fail ${url}`);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toMatch(/hello/);
  });

  it('refuses userinfo and fragment tricks on raw proxy requests', async ({
    sandbox: { allowed },
  }) => {
    const r = await sh(
      allowed,
      `python3 -c "
import socket
for req in [b'CONNECT allowed.test@other.test:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n',
            b'GET http://other.test/ HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n',
            b'GET /relative HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n']:
    s = socket.create_connection(('127.0.0.1', 3128)); s.sendall(req)
    print(s.recv(200).split(b'\\r\\n')[0].decode()); s.close()
"`,
    );
    expect(r.stdout.trim().split('\n')).toEqual([
      'HTTP/1.1 403 Forbidden',
      'HTTP/1.1 400 Bad Request',
      'HTTP/1.1 400 Bad Request',
    ]);
  });

  it('has no route around the proxy: no interface but lo, no DNS, no raw TCP, UDP or IPv6 out', async ({
    sandbox: { allowed, disabled },
    upstreams: { httpPort },
  }) => {
    for (const id of [allowed, disabled]) {
      const r = await sh(
        id,
        `ls /sys/class/net; ip -4 route show | wc -l; getent hosts allowed.test || echo no-dns; python3 -c "
import socket
for fam, addr in [(socket.AF_INET, ('127.0.0.1', ${httpPort})), (socket.AF_INET6, ('::1', ${httpPort}))]:
    try:
        socket.create_connection(addr, 2).close(); print('tcp-open')
    except OSError as e: print('tcp-refused')
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: u.connect(('192.0.2.1', 53)); print('udp-route')
except OSError: print('udp-no-route')
"`,
      );
      expect(r.stdout.trim().split('\n')).toEqual([
        'lo',
        '0',
        'no-dns',
        'tcp-refused',
        'tcp-refused',
        'udp-no-route',
      ]);
    }
  });

  it("can't reach another sandbox or the host's services (the API, Postgres)", async ({
    berth,
    sandbox: { allowed, disabled },
  }) => {
    await sh(
      disabled,
      'nohup python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 & sleep 0.5',
    );
    const api = new URL(berth.url);
    const db = new URL(berth.databaseUrl);
    const r = await sh(
      allowed,
      `for u in http://127.0.0.1:8000/ http://127.0.0.1:${api.port}/healthz http://localhost:${api.port}/healthz http://127.0.0.1:${db.port}/; do curl -s --max-time 5 -o /dev/null -w '%{http_code}\\n' $u; done; curl -s --max-time 5 --noproxy '*' http://127.0.0.1:${api.port}/healthz || echo direct-refused`,
    );
    expect(r.stdout.trim().split('\n')).toEqual(['403', '403', '403', '403', 'direct-refused']);
    const back = await sh(
      disabled,
      `curl -s --max-time 5 http://127.0.0.1:${api.port}/healthz || echo refused`,
    );
    expect(back.stdout.trim()).toBe('refused');
  });

  it('counts and logs each decision per container', async ({ berth, sandbox: { allowed } }) => {
    await curl(allowed, 'https://allowed.test/');
    await curl(allowed, 'https://other.test/');
    const res = await berth.api(`/v1/containers/${allowed}/egress`);
    const stats = (await res.json()) as {
      allowed: number;
      denied: number;
      bytes_down: number;
      recent: { decision: string; host: string }[];
    };
    expect(stats.allowed).toBeGreaterThan(0);
    expect(stats.denied).toBeGreaterThan(0);
    expect(stats.bytes_down).toBeGreaterThan(0);
    expect(stats.recent.at(-1)).toMatchObject({
      decision: 'denied',
      host: 'other.test',
      port: 443,
    });
    expect(
      stats.recent.some(
        (d: { decision: string; host: string }) =>
          d.decision === 'allowed' && d.host === 'allowed.test',
      ),
    ).toBe(true);
  });
});

describe('allowlist validation', () => {
  it.for([
    ['10.0.0.1', 0],
    ['https://example.com', 0],
    ['example.com:443', 0],
    ['example.com/path', 0],
    ['user@example.com', 0],
    ['*.com', 0],
    ['*.co.uk', 0],
    ['*.github.io', 0],
    ['co.uk', 0],
    ['ex*ample.com', 0],
    ['[::1]', 0],
    ['2130706433', 0],
  ] as const)('refuses %j naming its index', async ([entry, index], { berth }) => {
    const res = await berth.postJson('/v1/containers', {
      name: 'x',
      network_policy: { type: 'allowlist', allowed_domains: [entry] },
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).param).toBe(`network_policy.allowed_domains.${index}`);
  });

  it('stores IDN as punycode and echoes the normalised list, never domain secrets', async ({
    berth,
  }) => {
    const c = await berth.client.containers.create({
      name: 'idn',
      network_policy: {
        type: 'allowlist',
        allowed_domains: ['Bücher.Example', 'api.example.com.'],
      },
    });
    expect(c.network_policy).toEqual({
      type: 'allowlist',
      allowed_domains: ['xn--bcher-kva.example', 'api.example.com'],
    });
    const secrets = await berth.postJson('/v1/containers', {
      name: 'x',
      network_policy: {
        type: 'allowlist',
        allowed_domains: ['a.example.com'],
        domain_secrets: [{ domain: 'a.example.com', name: 'TOKEN', value: 's3cret' }],
      },
    });
    expect(secrets.status).toBe(400);
    const body = (await secrets.json()) as ErrorEnvelope;
    expect(body.error.param).toBe('network_policy.domain_secrets');
    expect(JSON.stringify(body)).not.toContain('s3cret');
  });
});

describe('fail closed across restarts', () => {
  it('opens nothing while the API is down, and restores exactly the allowlist when it is back', async ({
    upstreams,
    deployment,
    berthWith,
  }) => {
    const shared = { ...upstreams.env, ...deployment.env };
    const first = await berthWith(shared, { keepSandboxes: true });
    const c = await first.client.containers.create({
      name: 'survivor',
      network_policy: { type: 'allowlist', allowed_domains: ['allowed.test'] },
    });
    expect((await sh(c.id, 'curl -sS --max-time 10 http://allowed.test/')).stdout).toBe(
      'hello http allowed.test',
    );
    await first[Symbol.asyncDispose]();

    const down = await sh(c.id, 'curl -sS --max-time 5 http://allowed.test/ || echo failed-closed');
    expect(down.stdout).toMatch(/failed-closed/);
    expect(down.stdout).not.toMatch(/hello/);

    await berthWith(shared);
    expect((await sh(c.id, 'curl -sS --max-time 10 http://allowed.test/')).stdout).toBe(
      'hello http allowed.test',
    );
    const other = await sh(c.id, 'curl -sS --max-time 10 http://other.test/; echo " exit=$?"');
    expect(other.stdout).not.toMatch(/hello/);
  });
});
