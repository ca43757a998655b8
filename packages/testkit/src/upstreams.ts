import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';

export interface TestCertificate {
  keyPath: string;
  certPath: string;
  key: Buffer;
  cert: Buffer;
}

/**
 * A self-signed certificate (its own CA) for `dnsNames`, valid for a day, written to `dir` as
 * key.pem and `certFile`: what a local HTTPS upstream serves and a sandbox is told to trust.
 */
export function selfSignedCertificate(options: {
  dir: string;
  commonName: string;
  dnsNames: string[];
  certFile?: string;
}): TestCertificate {
  const keyPath = join(options.dir, 'key.pem');
  const certPath = join(options.dir, options.certFile ?? 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${options.commonName}`,
      '-addext',
      `subjectAltName=${options.dnsNames.map((n) => `DNS:${n}`).join(',')}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  );
  return { keyPath, certPath, key: readFileSync(keyPath), cert: readFileSync(certPath) };
}

/** Starts `server` on `host:port` (a free port by default); resolves to the port it got. */
export function listenOn(server: Server, port = 0, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}
