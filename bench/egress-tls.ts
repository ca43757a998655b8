import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from './harness.js';
import { PLACEHOLDER } from './egress-peer.js';
import { EGRESS_RUNS, withEgressRig } from './egress.js';

/** A certificate for both bench names, made in `dir`; its PEM. */
function benchCert(dir: string): string {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=bench']
      .concat(['-addext', 'subjectAltName=DNS:plain.bench.test,DNS:secret.bench.test'])
      .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
    { stdio: 'ignore' },
  );
  return readFileSync(join(dir, 'cert.pem'), 'utf8');
}

/**
 * 10 MB over HTTPS from a local upstream: directly, through a plain CONNECT tunnel (a domain with
 * no secret), and through TLS interception (a domain with a secret: two TLS sessions and a parse).
 */
export async function benchEgressTls(runs = EGRESS_RUNS): Promise<Row[]> {
  let cert = '';
  const setup = {
    upstream: (dir: string) => {
      cert = benchCert(dir);
      return ['https', join(dir, 'key.pem'), join(dir, 'cert.pem')];
    },
    hosts: ['plain.bench.test:443', 'secret.bench.test:443'],
    proxy: () => ({ upstreamCa: [cert] }),
  };
  return withEgressRig(setup, async (rig) => {
    const id = 'cntr_' + 't'.repeat(48);
    const socketPath = await rig.attach(
      id,
      ['plain.bench.test', 'secret.bench.test'],
      [{ domain: 'secret.bench.test', placeholder: PLACEHOLDER, value: 'sk-bench' }],
    );
    const sandboxCa = readFileSync(join(rig.proxy.hostDir(id), 'ca.pem'), 'utf8');
    const p = await rig.p50s(runs, {
      direct: {
        kind: 'https',
        host: '127.0.0.1',
        port: rig.port,
        servername: 'plain.bench.test',
        ca: cert,
      },
      tunnel: { kind: 'connect', socketPath, host: 'plain.bench.test', ca: cert },
      intercepted: { kind: 'connect', socketPath, host: 'secret.bench.test', ca: sandboxCa },
    });
    return [
      { name: 'egress HTTPS 10 MB p50: direct from the host', value: p.direct, unit: 'ms' },
      { name: 'egress HTTPS 10 MB p50: plain CONNECT tunnel', value: p.tunnel, unit: 'ms' },
      {
        name: 'egress HTTPS 10 MB p50: TLS-intercepted (secret)',
        value: p.intercepted,
        unit: 'ms',
      },
      {
        name: 'egress HTTPS 10 MB p50: ratio tunnel/direct',
        value: p.tunnel / p.direct,
        unit: 'x',
      },
      {
        name: 'egress HTTPS 10 MB p50: ratio intercepted/tunnel',
        value: p.intercepted / p.tunnel,
        unit: 'x',
      },
    ];
  });
}
