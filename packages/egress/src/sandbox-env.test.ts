import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  SANDBOX_EGRESS_DIR,
  SOCKET,
  forwarderCommand,
  sandboxCaEnv,
  sandboxProxyEnv,
  writeCaFiles,
} from './sandbox-env.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-sandbox-env-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\n';

describe('the sandbox side', () => {
  it('forwards the proxy port on loopback to the socket in the egress directory', () => {
    expect(forwarderCommand()).toEqual([
      'socat',
      '-b',
      '65536',
      'TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr',
      `UNIX-CONNECT:${SANDBOX_EGRESS_DIR}/${SOCKET}`,
    ]);
    expect(sandboxProxyEnv()).toContain('HTTPS_PROXY=http://127.0.0.1:3128');
    expect(sandboxProxyEnv()).toContain('NO_PROXY=');
  });

  it('writes the CA alone and the bundle of the roots and it, each ending in one newline', async () => {
    await writeCaFiles(dir, PEM);
    const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
    const bundle = await readFile(join(dir, 'ca-bundle.pem'), 'utf8');
    expect(ca).toBe(`${PEM.trim()}\n`);
    expect(bundle.startsWith(tls.rootCertificates[0]!)).toBe(true);
    expect(bundle.endsWith(`\n${PEM.trim()}\n`)).toBe(true);
    expect((await stat(join(dir, 'ca.pem'))).mode & 0o777).toBe(0o644);
    // What the environment names is what was written.
    expect(sandboxCaEnv()).toContain(`SSL_CERT_FILE=${SANDBOX_EGRESS_DIR}/ca-bundle.pem`);
    expect(sandboxCaEnv()).toContain(`NODE_EXTRA_CA_CERTS=${SANDBOX_EGRESS_DIR}/ca.pem`);
  });
});
