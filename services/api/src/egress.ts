import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import tls from 'node:tls';
import cron from 'node-cron';
import type { Logger } from 'pino';
import {
  AesGcmSecretBox,
  runningContainers,
  type AllowlistPolicy,
  type ContainerStore,
  type EgressController,
  type SecretBox,
} from '@berth/core';
import {
  EgressProxy,
  Resolver,
  SANDBOX_EGRESS_DIR,
  SANDBOX_PROXY_PORT,
  forwarderCommand,
  parseAllowlist,
  parseUpstreamProxy,
  sandboxCaEnv,
  sandboxProxyEnv,
  type SandboxSecret,
} from '@berth/egress';
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
  /** Serve exactly the running allowlist containers: after a restart, and as sandboxes come and go. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The egress proxy, run in the API process on the Docker host, and its wiring. */
export function createEgress(config: Config, store: ContainerStore, logger: Logger): Egress {
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
    // Only the in-sandbox forwarder's uid may connect (needs root to chown; otherwise 0666).
    ...(process.getuid?.() === 0 ? { socketOwner: FORWARDER } : {}),
  });
  const rulesOf = (domains: string[]) => {
    const parsed = parseAllowlist(domains, { maxEntries: Number.MAX_SAFE_INTEGER });
    if (!parsed.ok) throw new Error(`stored allowlist no longer parses: ${parsed.message}`);
    return parsed.rules;
  };
  /**
   * The clear values live only in the proxy's memory. One that doesn't open (the key changed or
   * is gone) is held as null: its domain is then refused, never tunnelled without its secret.
   */
  const secretsOf = (id: string, policy: AllowlistPolicy): SandboxSecret[] =>
    (policy.domainSecrets ?? []).map((s) => {
      let value: string | null = null;
      try {
        if (box) value = box.open(id, s.sealed);
      } catch {
        logger.warn({ containerId: id, domain: s.domain }, 'a domain secret did not decrypt');
      }
      return { domain: s.domain, placeholder: s.placeholder, value };
    });
  const attach = (id: string, policy: AllowlistPolicy) =>
    proxy.attach(id, rulesOf(policy.allowedDomains), secretsOf(id, policy));
  const controller: EgressController = {
    attach,
    detach: (id) => proxy.detach(id),
  };
  const sync = async () => {
    const live = new Set<string>();
    for await (const row of runningContainers(store)) {
      if (row.networkPolicy.type !== 'allowlist') continue;
      live.add(row.id);
      await attach(row.id, row.networkPolicy);
    }
    // Running rows only: creates in flight attach before their row is running, so keep young ones.
    for (const id of proxy.attachedIds())
      if (!live.has(id) && !(await store.liveIds([id])).has(id)) await proxy.detach(id);
  };
  const task = cron.schedule(
    '*/30 * * * * *',
    () => void sync().catch((err: unknown) => logger.warn({ err }, 'egress sync failed')),
    {
      noOverlap: true,
      name: 'egress-sync',
    },
  );
  return {
    controller,
    proxy,
    ...(box ? { secrets: box } : {}),
    sync,
    sandbox: {
      hostDir: (id) => proxy.hostDir(id),
      containerDir: SANDBOX_EGRESS_DIR,
      env: sandboxProxyEnv(),
      caEnv: sandboxCaEnv(),
      forwarder: forwarderCommand(),
      forwarderUser: `${FORWARDER.uid}:${FORWARDER.gid}`,
      port: SANDBOX_PROXY_PORT,
    },
    async close() {
      await task.stop();
      await proxy.close();
    },
  };
}
