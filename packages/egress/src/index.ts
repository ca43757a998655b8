export { parseAllowlist, matchHost, normalizeHost, ruleToString } from './allowlist.js';
export type { Rule, AllowlistResult } from './allowlist.js';
export { isPublicUnicast, isTrustedAddress, parseCidrs } from './address-guard.js';
export { Resolver, EgressDenied } from './resolver.js';
export { ProxyEgressController } from './controller.js';
export type { ResolverOptions } from './resolver.js';
export { EgressProxy } from './proxy.js';
export {
  sandboxProxyEnv,
  sandboxCaEnv,
  forwarderCommand,
  SANDBOX_EGRESS_DIR,
  SANDBOX_PROXY_PORT,
} from './sandbox-env.js';
export type {
  EgressLogger,
  Decision,
  EgressStats,
  EgressProxyOptions,
  SandboxSecret,
} from './proxy.js';
export { parseUpstreamProxy } from './upstream.js';
export type { UpstreamProxy } from './upstream.js';
