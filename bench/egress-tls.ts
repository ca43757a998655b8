import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from './harness.js';
import { PLACEHOLDER } from './egress-peer.js';
import { egressRounds, roundsRow } from './egress.js';

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
export async function benchEgressTls(): Promise<Row[]> {
  let cert = '';
  const setup = {
    upstream: (dir: string) => {
      cert = benchCert(dir);
      return ['https', join(dir, 'key.pem'), join(dir, 'cert.pem')];
    },
    hosts: ['plain.bench.test:443', 'secret.bench.test:443'],
    proxy: () => ({ upstreamCa: [cert] }),
  };
  const rounds = await egressRounds(setup, async (rig) => {
    const id = 'cntr_' + 't'.repeat(48);
    const socketPath = await rig.attach(
      id,
      ['plain.bench.test', 'secret.bench.test'],
      [{ domain: 'secret.bench.test', placeholder: PLACEHOLDER, value: 'sk-bench' }],
    );
    const sandboxCa = readFileSync(join(rig.proxy.hostDir(id), 'ca.pem'), 'utf8');
    return {
      direct: {
        kind: 'https',
        host: '127.0.0.1',
        port: rig.port,
        servername: 'plain.bench.test',
        ca: cert,
      },
      tunnel: { kind: 'connect', socketPath, host: 'plain.bench.test', ca: cert },
      intercepted: { kind: 'connect', socketPath, host: 'secret.bench.test', ca: sandboxCa },
    };
  });
  const label = 'egress HTTPS 10 MB p50:';
  return [
    roundsRow(`${label} direct from the host`, rounds, (r) => r.direct, 'ms'),
    roundsRow(`${label} plain CONNECT tunnel`, rounds, (r) => r.tunnel, 'ms'),
    roundsRow(`${label} TLS-intercepted (secret)`, rounds, (r) => r.intercepted, 'ms'),
    roundsRow(`${label} ratio tunnel/direct`, rounds, (r) => r.tunnel / r.direct, 'x'),
    roundsRow(`${label} ratio intercepted/tunnel`, rounds, (r) => r.intercepted / r.tunnel, 'x'),
  ];
}
