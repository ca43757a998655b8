import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { AesGcmSecretBox, type EgressController, type SecretBox } from '@berth/core';
import {
  EgressProxy,
  ProxyEgressController,
  Resolver,
  SANDBOX_EGRESS_DIR,
  SANDBOX_PROXY_PORT,
  forwarderCommand,
  parseUpstreamProxy,
  sandboxCaEnv,
  sandboxProxyEnv,
} from '@berth/egress';
import type { Decision } from '@berth/egress';
import type { SandboxEgress } from '@berth/sandbox-docker';
import { splitList, type Config } from './config.js';

/** The in-sandbox forwarder runs as nobody: not the sandbox's uid, so its code can't signal it. */
const FORWARDER = { uid: 65534, gid: 65534 };

/** `a=b,c=d` pairs of a test-only setting. */
function pairs(value: string | undefined): [string, string][] {
  return (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const at = p.lastIndexOf('=');
      if (at <= 0) throw new Error(`malformed pair '${p}'`);
      return [p.slice(0, at), p.slice(at + 1)];
    });
}

const hostPort = (value: string) => {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
};

export interface Egress {
  controller: EgressController;
  sandbox: SandboxEgress;
  proxy: EgressProxy;
  /** Seals `domain_secrets` (BERTH_SECRETS_KEY); absent: the server refuses them. */
  secrets?: SecretBox;
}

/** The egress proxy, run in the API process on the Docker host, and its wiring. No I/O. */
export function createEgress(
  config: Config,
  logger: Logger,
  onDecision?: (decision: Decision) => void,
): Egress {
  const testHosts = new Map<string, string[]>();
  for (const [host, ip] of pairs(config.BERTH_EGRESS_TEST_HOSTS))
    testHosts.set(host, [...(testHosts.get(host) ?? []), ip]);
  const resolver = new Resolver({
    testUpstreams: new Map(
      pairs(config.BERTH_EGRESS_TEST_UPSTREAMS).map(([from, to]) => [from, hostPort(to)]),
    ),
    ...(testHosts.size ? { lookup: async (host: string) => testHosts.get(host) ?? [] } : {}),
    denyCidrs: splitList(config.BERTH_EGRESS_DENY_CIDRS),
    trustedCidrs: splitList(config.BERTH_EGRESS_TRUSTED_CIDRS),
  });
  const box = config.BERTH_SECRETS_KEY
    ? new AesGcmSecretBox(AesGcmSecretBox.parseKey(config.BERTH_SECRETS_KEY))
    : undefined;
  // Read here, at composition: the file is a test-only setting checked by the config schema.
  const testCa = config.BERTH_EGRESS_TEST_UPSTREAM_CA;
  const proxy = new EgressProxy({
    ...(config.BERTH_EGRESS_UPSTREAM_PROXY
      ? { upstreamProxy: parseUpstreamProxy(config.BERTH_EGRESS_UPSTREAM_PROXY) }
      : {}),
    ...(testCa ? { upstreamCa: [...tls.rootCertificates, readFileSync(testCa, 'utf8')] } : {}),
    runDir: resolve(config.BERTH_EGRESS_DIR),
    resolver,
    log: logger,
    maxConnectionsPerSandbox: config.BERTH_EGRESS_MAX_CONNECTIONS_PER_SANDBOX,
    maxConnections: config.BERTH_EGRESS_MAX_CONNECTIONS,
    idleTimeoutMs: config.BERTH_EGRESS_IDLE_TIMEOUT_MS,
    sendBuffer: config.BERTH_SOCKET_SEND_BUFFER,
    // Only the in-sandbox forwarder's uid may connect (needs root to chown; otherwise 0666).
    ...(process.getuid?.() === 0 ? { socketOwner: FORWARDER } : {}),
    ...(onDecision ? { onDecision } : {}),
  });
  return {
    controller: new ProxyEgressController(proxy, {
      maxDomains: config.BERTH_EGRESS_MAX_DOMAINS,
      ...(box ? { box } : {}),
      log: logger,
    }),
    proxy,
    ...(box ? { secrets: box } : {}),
    sandbox: {
      hostDir: (id) => proxy.hostDir(id),
      containerDir: SANDBOX_EGRESS_DIR,
      env: sandboxProxyEnv(),
      caEnv: sandboxCaEnv(),
      forwarder: forwarderCommand(),
      forwarderUser: `${FORWARDER.uid}:${FORWARDER.gid}`,
      port: SANDBOX_PROXY_PORT,
    },
  };
}
