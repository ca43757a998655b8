import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  /** A temporary directory of its own holding both files; `remove` deletes it. */
  dir: string;
  keyPath: string;
  certPath: string;
  key: Buffer;
  cert: Buffer;
  remove(): void;
}

/**
 * A self-signed certificate (its own CA) for `dnsNames`, valid for a day, written to a temporary
 * directory as key.pem and `certFile`: what a local HTTPS upstream serves and a sandbox trusts.
 */
export function selfSignedCertificate(
  commonName: string,
  dnsNames: string[],
  certFile = 'cert.pem',
): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'berth-test-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, certFile);
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
      `/CN=${commonName}`,
      '-addext',
      `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  );
  return {
    dir,
    keyPath,
    certPath,
    key: readFileSync(keyPath),
    cert: readFileSync(certPath),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
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
