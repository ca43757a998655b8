import { InvalidRequestError, type EgressController, type NetworkPolicy } from '@berth/core';
import { parseAllowlist, ruleToString, type Rule } from './allowlist.js';
import type { EgressProxy } from './proxy.js';

type AllowlistPolicy = Extract<NetworkPolicy, { type: 'allowlist' }>;

/** The proxy behind the domain's egress port: policies are checked here, enforced by the proxy. */
export class ProxyEgressController implements EgressController {
  constructor(
    private readonly proxy: EgressProxy,
    private readonly options: { maxDomains: number },
  ) {}

  /** Validates entry by entry (the 400 names the entry) and normalises. */
  checkPolicy(requested: AllowlistPolicy): NetworkPolicy {
    if (requested.domainSecrets) {
      throw new InvalidRequestError(
        'domain_secrets are not supported on this server yet: injecting them into HTTPS needs TLS interception, which Berth does not do.',
        { param: 'network_policy.domain_secrets', code: 'unsupported_parameter' },
      );
    }
    const parsed = parseAllowlist(requested.allowedDomains, {
      maxEntries: this.options.maxDomains,
    });
    if (!parsed.ok) {
      throw new InvalidRequestError(
        `Invalid 'network_policy.allowed_domains.${parsed.index}': ${parsed.message}.`,
        { param: `network_policy.allowed_domains.${parsed.index}` },
      );
    }
    return { type: 'allowlist', allowedDomains: [...new Set(parsed.rules.map(ruleToString))] };
  }

  attach(containerId: string, allowedDomains: string[]): Promise<void> {
    return this.proxy.attach(containerId, storedRules(allowedDomains));
  }

  detach(containerId: string): Promise<void> {
    return this.proxy.detach(containerId);
  }

  attachedIds(): string[] {
    return this.proxy.attachedIds();
  }
}

/** A stored allowlist was normalised at create; one that no longer parses is a bug, loudly. */
function storedRules(domains: string[]): Rule[] {
  const parsed = parseAllowlist(domains, { maxEntries: Number.MAX_SAFE_INTEGER });
  if (!parsed.ok) throw new Error(`stored allowlist no longer parses: ${parsed.message}`);
  return parsed.rules;
}
