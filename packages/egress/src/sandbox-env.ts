import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';

/** What the sandbox sees: its egress directory, the proxy port its forwarder listens on. */
export const SANDBOX_EGRESS_DIR = '/run/berth-egress';
export const SANDBOX_PROXY_PORT = 3128;
/** In the sandbox's egress directory: the proxy's socket. */
export const SOCKET = 'egress.sock';
/** In the sandbox's egress directory: the system roots plus its CA, and its CA alone. */
const CA_BUNDLE = 'ca-bundle.pem';
const CA_CERT = 'ca.pem';

/** What a sandbox with secrets needs to trust its proxy's CA (curl, OpenSSL, Python, Node). */
export const sandboxCaEnv = (): string[] => {
  const bundle = `${SANDBOX_EGRESS_DIR}/${CA_BUNDLE}`;
  return [
    `SSL_CERT_FILE=${bundle}`,
    `REQUESTS_CA_BUNDLE=${bundle}`,
    `CURL_CA_BUNDLE=${bundle}`,
    `PIP_CERT=${bundle}`,
    `GIT_SSL_CAINFO=${bundle}`,
    `NODE_EXTRA_CA_CERTS=${SANDBOX_EGRESS_DIR}/${CA_CERT}`,
  ];
};

/** What a sandbox needs to use the proxy: its environment and the in-sandbox forwarder. */
export const sandboxProxyEnv = (): string[] => {
  const url = `http://127.0.0.1:${SANDBOX_PROXY_PORT}`;
  return [
    `HTTP_PROXY=${url}`,
    `HTTPS_PROXY=${url}`,
    `http_proxy=${url}`,
    `https_proxy=${url}`,
    'NO_PROXY=',
    'no_proxy=',
  ];
};

/**
 * The in-sandbox forwarder. `-b 65536`: socat's default 8 KiB buffer made a 10 MB fetch from a
 * sandbox take twice as long (`pnpm bench --only sandbox-egress`); two buffers per connection of
 * this size cost the sandbox at most 8 MiB at the default connection cap (64).
 */
export const forwarderCommand = (): string[] => [
  'socat',
  '-b',
  '65536',
  `TCP-LISTEN:${SANDBOX_PROXY_PORT},bind=127.0.0.1,fork,reuseaddr`,
  `UNIX-CONNECT:${SANDBOX_EGRESS_DIR}/${SOCKET}`,
];

/**
 * Writes a sandbox CA's certificate, and the bundle the sandbox trusts (the system roots and it),
 * into the sandbox's egress directory on the host.
 */
export async function writeCaFiles(hostDir: string, certPem: string): Promise<void> {
  const roots = tls.rootCertificates.join('\n');
  // Each file ends in a newline, so a sandbox can append its own certificates with `cat`.
  await writeFile(join(hostDir, CA_CERT), `${certPem.trim()}\n`, { mode: 0o644 });
  await writeFile(join(hostDir, CA_BUNDLE), `${roots}\n${certPem.trim()}\n`, { mode: 0o644 });
}
