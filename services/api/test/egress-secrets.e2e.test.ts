import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { dockerExec, listenOn, selfSignedCertificate } from '@berth/testkit';
import { errorOf, startBerthFor, test } from './fixtures.js';

const SECRET = `sk-e2e-${randomBytes(16).toString('hex')}`;
/** Request heads the upstream saw: `host method url authorization body`. */
const seen: string[] = [];
// Loopback aliases, for the trusted-range test: one named in the setting, one only covered.
const base = `127.${randomInt(1, 250)}.${randomInt(1, 250)}`;
const trustedIp = `${base}.7`;
const untrustedIp = `${base}.8`;
const logLines: string[] = [];

/** Everything a sandbox command printed must be free of the secret. */
async function shIn(id: string, script: string) {
  const r = await dockerExec(id, ['sh', '-c', script]);
  expect(r.stdout + r.stderr).not.toContain(SECRET);
  return r;
}

/* eslint-disable no-empty-pattern -- a fixture without dependencies destructures nothing. */

const it = test
  // A local TLS upstream with its own CA, serving secret.test (has a secret) and plain.test (none).
  .extend('upstream', { scope: 'file' }, async ({}, { onCleanup }) => {
    const ca = selfSignedCertificate(
      'Berth test upstream CA',
      ['secret.test', 'plain.test'],
      'upstream-ca.pem',
    );
    const upstream = https.createServer({ key: ca.key, cert: ca.cert }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(
          `${req.headers.host} ${req.method} ${req.url} ${req.headers.authorization ?? '-'} ${body || '-'}`,
        );
        if (req.url === '/redirect')
          res.writeHead(302, { location: 'https://plain.test/landing' }).end();
        else res.end(`ok ${req.headers.host} ${req.url}`);
      });
    });
    const port = await listenOn(upstream);
    const aliases: http.Server[] = [];
    onCleanup(() => {
      upstream.closeAllConnections();
      upstream.close();
      for (const s of aliases) s.close();
      ca.remove();
    });
    for (const ip of [trustedIp, untrustedIp]) {
      const s = http.createServer((req, res) => res.end(`mirror ${ip}`));
      await listenOn(s, 80, ip);
      aliases.push(s);
    }
    const env = {
      BERTH_EGRESS_TEST_UPSTREAMS: `secret.test:443=127.0.0.1:${port},plain.test:443=127.0.0.1:${port}`,
      BERTH_EGRESS_TEST_UPSTREAM_CA: ca.certPath,
    };
    return { ca, env };
  })
  .extend('berth', { scope: 'file' }, ({ upstream }, { onCleanup }) =>
    startBerthFor(
      onCleanup,
      {
        ...upstream.env,
        BERTH_SECRETS_KEY: randomBytes(32).toString('base64'),
        BERTH_LOG_LEVEL: 'trace',
        BERTH_EGRESS_TEST_HOSTS: `mirror.test=${trustedIp},near.test=${untrustedIp}`,
        // A broad loopback range opens nothing by itself; the address named on its own does.
        BERTH_EGRESS_TRUSTED_CIDRS: `127.0.0.0/8,${trustedIp}`,
      },
      { logLines },
    ),
  )
  // The container with the secret, trusting the upstream's CA.
  .extend('id', { scope: 'file' }, async ({ berth, upstream }) => {
    const c = await berth.client.containers.create({
      name: 'with-secret',
      network_policy: {
        type: 'allowlist',
        allowed_domains: ['secret.test', 'plain.test', 'mirror.test', 'near.test'],
        domain_secrets: [{ domain: 'secret.test', name: 'API_TOKEN', value: SECRET }],
      },
    } as Parameters<typeof berth.client.containers.create>[0]);
    expect(JSON.stringify(c)).not.toContain(SECRET);
    await berth.client.containers.files.create(c.id, {
      file: await toFile(upstream.ca.cert, 'upstream-ca.pem'),
    });
    return c.id;
  })
  .extend(
    'sh',
    { scope: 'file' },
    ({ id }) =>
      (script: string) =>
        shIn(id, script),
  )
  .extend('placeholder', { scope: 'file' }, async ({ sh }) => {
    const placeholder = (await sh('printf %s "$API_TOKEN"')).stdout;
    expect(placeholder).toMatch(/^berth_secret_[0-9a-f]{48}$/);
    return placeholder;
  });
it.beforeAll(async ({ placeholder: _ }) => {});

describe('domain_secrets, from inside a real sandbox', () => {
  it('sends the real secret to its domain with curl and requests; other hosts get the placeholder', async ({
    berth,
    id,
    sh,
    placeholder,
  }) => {
    seen.length = 0;
    const r = await sh(
      `curl -sS --max-time 10 -H "Authorization: Bearer $API_TOKEN" https://secret.test/curl; echo
curl -sS --max-time 10 --cacert /mnt/data/upstream-ca.pem -H "Authorization: Bearer $API_TOKEN" https://plain.test/curl; echo
python3 -c "
import os, requests
h = {'Authorization': 'Bearer ' + os.environ['API_TOKEN']}
print(requests.get('https://secret.test/py', headers=h, timeout=10).text)
print(requests.get('https://plain.test/py', headers=h, timeout=10, verify='/mnt/data/upstream-ca.pem').text)
"`,
    );
    expect(r.stdout.trim().split('\n')).toEqual([
      'ok secret.test /curl',
      'ok plain.test /curl',
      'ok secret.test /py',
      'ok plain.test /py',
    ]);
    expect(seen).toEqual([
      `secret.test GET /curl Bearer ${SECRET} -`,
      `plain.test GET /curl Bearer ${placeholder} -`,
      `secret.test GET /py Bearer ${SECRET} -`,
      `plain.test GET /py Bearer ${placeholder} -`,
    ]);
    const view = (await (await berth.api(`/v1/containers/${id}/egress`)).json()) as {
      secret_substitutions: { domain: string; count: number }[];
    };
    expect(view.secret_substitutions).toEqual([
      { domain: 'secret.test', count: expect.any(Number) },
    ]);
    expect(view.secret_substitutions[0]!.count).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(view)).not.toContain(SECRET);
  });

  it('never lets the value into the environment, /proc, files or the egress directory', async ({
    sh,
    placeholder,
  }) => {
    const r = await sh(
      `env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; ls -la /run/berth-egress
echo "value-files=$(grep -rl -e '${SECRET.slice(0, 12)}' /mnt/data /tmp /home /run /etc 2>/dev/null | wc -l)"
echo "key-files=$(grep -rl 'PRIVATE KEY' /run/berth-egress /mnt/data /tmp 2>/dev/null | wc -l)"`,
    );
    expect(r.stdout).toContain(`API_TOKEN=${placeholder}`);
    expect(r.stdout).toContain('SSL_CERT_FILE=/run/berth-egress/ca-bundle.pem');
    expect(r.stdout).toContain('value-files=0\n');
    expect(r.stdout).toContain('key-files=0\n');
    expect(r.stdout).toMatch(/ca-bundle\.pem/);
  });

  it('sends the placeholder as-is in URLs and bodies, and after a redirect to another host', async ({
    sh,
    placeholder,
  }) => {
    seen.length = 0;
    const r = await sh(
      `curl -sS --max-time 10 --cacert /mnt/data/upstream-ca.pem "https://plain.test/u?t=$API_TOKEN" -d "t=$API_TOKEN" >/dev/null
curl -sS --max-time 10 -d "t=$API_TOKEN" "https://secret.test/b?t=$API_TOKEN" >/dev/null
cat /run/berth-egress/ca-bundle.pem /mnt/data/upstream-ca.pem > /mnt/data/both.pem
curl -sS --max-time 10 --cacert /mnt/data/both.pem -L --location-trusted -H "Authorization: Bearer $API_TOKEN" https://secret.test/redirect >/dev/null`,
    );
    expect(r.stderr).toBe('');
    expect(seen).toEqual([
      `plain.test POST /u?t=${placeholder} - t=${placeholder}`,
      `secret.test POST /b?t=${placeholder} - t=${placeholder}`,
      `secret.test GET /redirect Bearer ${SECRET} -`,
      `plain.test GET /landing Bearer ${placeholder} -`,
    ]);
  });

  it('refuses the secret domain by IP literal, mismatched SNI, pipelined and Connection tricks', async ({
    sh,
  }) => {
    seen.length = 0;
    const ip = await sh(
      `curl -sS --max-time 10 -k -H "Host: secret.test" -H "Authorization: $API_TOKEN" https://127.0.0.1/ || echo refused`,
    );
    expect(ip.stdout).toContain('refused');
    const raw = await sh(`python3 -c "
import os, socket, ssl
tok = os.environ['API_TOKEN']
def tunnel(sni):
    s = socket.create_connection(('127.0.0.1', 3128), 10)
    s.sendall(b'CONNECT secret.test:443 HTTP/1.1\\r\\nHost: secret.test:443\\r\\n\\r\\n')
    assert s.recv(200).startswith(b'HTTP/1.1 200')
    ctx = ssl.create_default_context(cafile='/run/berth-egress/ca-bundle.pem')
    ctx.check_hostname = False
    return ctx.wrap_socket(s, server_hostname=sni)
def read(t):
    out = b''
    try:
        while True:
            c = t.recv(65536)
            if not c: break
            out += c
    except (OSError, ssl.SSLError): pass
    return out.decode(errors='replace')
# TLS naming another host than the CONNECT target: cut off, nothing forwarded.
try:
    t = tunnel('plain.test'); t.sendall(('GET /sni HTTP/1.1\\r\\nHost: plain.test\\r\\nAuthorization: ' + tok + '\\r\\n\\r\\n').encode())
    print('sni', 'ok' in read(t))
except (OSError, ssl.SSLError): print('sni', False)
# Pipelined: the second request names another host and is refused; the first goes through.
t = tunnel('secret.test')
t.sendall(('GET /p1 HTTP/1.1\\r\\nHost: secret.test\\r\\nAuthorization: ' + tok + '\\r\\n\\r\\n'
          'GET /p2 HTTP/1.1\\r\\nHost: plain.test\\r\\nAuthorization: ' + tok + '\\r\\nConnection: close\\r\\n\\r\\n').encode())
out = read(t)
print('pipelined', 'ok secret.test /p1' in out, '421' in out)
# Connection naming Authorization makes it hop-by-hop: dropped, not forwarded.
t = tunnel('secret.test')
t.sendall(('GET /c HTTP/1.1\\r\\nHost: secret.test\\r\\nConnection: close, authorization\\r\\nAuthorization: ' + tok + '\\r\\n\\r\\n').encode())
print('connection', 'ok secret.test /c' in read(t))
"`);
    expect(raw.stdout.trim().split('\n')).toEqual([
      'sni False',
      'pipelined True True',
      'connection True',
    ]);
    expect(seen).toEqual([`secret.test GET /p1 ${SECRET} -`, 'secret.test GET /c - -']);
  });

  it('keeps the value out of the container object, the logs and every database table', async ({
    berth,
    id,
    placeholder,
  }) => {
    const one = await berth.api(`/v1/containers/${id}`);
    const list = await berth.api('/v1/containers');
    expect((await one.text()) + (await list.text())).not.toContain(SECRET);
    expect(logLines.length).toBeGreaterThan(10);
    expect(logLines.join('')).not.toContain(SECRET);
    const { rows: tables } = await berth.pool.query<{ name: string }>(
      "select format('%I.%I', table_schema, table_name) as name from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')",
    );
    let dump = '';
    for (const t of tables) {
      const { rows } = await berth.pool.query<{ row: string }>(
        `select t::text as row from ${t.name} t`,
      );
      dump += rows.map((r) => r.row).join('\n');
    }
    expect(dump).toContain(placeholder); // the row is there, with its placeholder...
    expect(dump).not.toContain(SECRET); // ...and only the sealed value
  });
});

describe('BERTH_EGRESS_TRUSTED_CIDRS', () => {
  it('reaches an otherwise refused address when named, and not when only a broad range covers it', async ({
    sh,
  }) => {
    const r = await sh(
      'curl -sS --max-time 10 http://mirror.test/; echo; curl -s --max-time 10 -o /dev/null -w "%{http_code}" http://near.test/',
    );
    expect(r.stdout.trim().split('\n')).toEqual([`mirror ${trustedIp}`, '403']);
  });
});

describe('domain_secrets validation', () => {
  it.for([
    [{ domain: 'other.test', name: 'T', value: 'v' }, 'network_policy.domain_secrets.0.domain'],
    [{ domain: '*.secret.test', name: 'T', value: 'v' }, 'network_policy.domain_secrets.0.domain'],
    [{ domain: 'secret.test', name: '1BAD', value: 'v' }, 'network_policy.domain_secrets.0.name'],
    [
      { domain: 'secret.test', name: 'HTTPS_PROXY', value: 'v' },
      'network_policy.domain_secrets.0.name',
    ],
    [{ domain: 'secret.test', name: 'T', value: '' }, 'network_policy.domain_secrets.0.value'],
  ] as const)(
    'refuses %j naming the field, never quoting the value',
    async ([secret, param], { berth }) => {
      const res = await berth.postJson('/v1/containers', {
        name: 'x',
        network_policy: {
          type: 'allowlist',
          allowed_domains: ['secret.test'],
          domain_secrets: [{ ...secret, value: secret.value && SECRET }],
        },
      });
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(JSON.parse(text).error.param).toBe(param);
      expect(text).not.toContain(SECRET);
    },
  );

  it('refuses two secrets under one name, and secrets without an allowlist', async ({ berth }) => {
    for (const [policy, param] of [
      [
        {
          type: 'allowlist',
          allowed_domains: ['secret.test', 'plain.test'],
          domain_secrets: [
            { domain: 'secret.test', name: 'T', value: 'a' },
            { domain: 'plain.test', name: 'T', value: 'b' },
          ],
        },
        'network_policy.domain_secrets.1.name',
      ],
      [{ type: 'disabled', domain_secrets: [] }, 'network_policy.domain_secrets'],
    ] as const) {
      const res = await berth.postJson('/v1/containers', { name: 'x', network_policy: policy });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).param).toBe(param);
    }
  });
});

describe('domain_secrets across restarts', () => {
  it('are restored from their sealed form with a new CA, and refused under another key', async ({
    upstream,
    deployment,
    berthWith,
  }) => {
    const key = randomBytes(32).toString('hex');
    const shared = { ...upstream.env, ...deployment.env };
    const call = (cid: string) =>
      dockerExec(cid, [
        'sh',
        '-c',
        'curl -sS --max-time 10 -H "Authorization: Bearer $API_TOKEN" https://secret.test/again || echo failed',
      ]);
    const first = await berthWith({ ...shared, BERTH_SECRETS_KEY: key }, { keepSandboxes: true });
    const c = await first.client.containers.create({
      name: 'survivor',
      network_policy: {
        type: 'allowlist',
        allowed_domains: ['secret.test'],
        domain_secrets: [{ domain: 'secret.test', name: 'API_TOKEN', value: SECRET }],
      },
    } as Parameters<typeof first.client.containers.create>[0]);
    seen.length = 0;
    expect((await call(c.id)).stdout).toBe('ok secret.test /again');
    const caBefore = readFileSync(join(deployment.egressDir, c.id, 'ca.pem'), 'utf8');
    await first[Symbol.asyncDispose]();

    const second = await berthWith({ ...shared, BERTH_SECRETS_KEY: key }, { keepSandboxes: true });
    expect((await call(c.id)).stdout).toBe('ok secret.test /again');
    expect(readFileSync(join(deployment.egressDir, c.id, 'ca.pem'), 'utf8')).not.toBe(caBefore);
    await second[Symbol.asyncDispose]();
    expect(seen).toEqual([
      `secret.test GET /again Bearer ${SECRET} -`,
      `secret.test GET /again Bearer ${SECRET} -`,
    ]);

    await berthWith({ ...shared, BERTH_SECRETS_KEY: randomBytes(32).toString('hex') });
    const r = await call(c.id);
    expect(r.stdout).toContain('failed');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(seen).toHaveLength(2);
  }, 120_000);
});
