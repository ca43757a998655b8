import {
  InvalidRequestError,
  type AllowlistPolicy,
  type ClearDomainSecret,
  type EgressController,
  type SecretBox,
} from '@berth/core';
import { matchHost, normalizeHost, parseAllowlist, ruleToString, type Rule } from './allowlist.js';
import type { EgressProxy, SandboxSecret } from './proxy.js';
import type { EgressLogger } from './stats.js';

/** Variables Berth itself sets in a sandbox: a secret may not take their place. */
const RESERVED_NAMES = new Set([
  'HOME',
  'LANG',
  'PATH',
  'TMPDIR',
  'MPLCONFIGDIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'SSL_CERT_FILE',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'PIP_CERT',
  'GIT_SSL_CAINFO',
  'NODE_EXTRA_CA_CERTS',
]);

export interface ProxyEgressControllerOptions {
  maxDomains: number;
  /** Opens sealed `domain_secrets` (BERTH_SECRETS_KEY); without it none can be opened. */
  box?: SecretBox;
  log?: EgressLogger;
}

/** The proxy behind the domain's egress port: policies are checked here, enforced by the proxy. */
export class ProxyEgressController implements EgressController {
  constructor(
    private readonly proxy: EgressProxy,
    private readonly options: ProxyEgressControllerOptions,
  ) {}

  /**
   * Validates entry by entry (the 400 names the entry) and normalises; each secret must be for
   * one allowlisted host. No message ever quotes a secret's value.
   */
  checkPolicy(
    requested: AllowlistPolicy,
    secrets: ClearDomainSecret[],
  ): { policy: AllowlistPolicy; secrets: ClearDomainSecret[] } {
    const parsed = parseAllowlist(requested.allowedDomains, {
      maxEntries: this.options.maxDomains,
    });
    if (!parsed.ok) {
      throw new InvalidRequestError(
        `Invalid 'network_policy.allowed_domains.${parsed.index}': ${parsed.message}.`,
        { param: `network_policy.allowed_domains.${parsed.index}` },
      );
    }
    const names = new Set<string>();
    const checked = secrets.map((secret, i): ClearDomainSecret => {
      const param = `network_policy.domain_secrets.${i}`;
      const domain = normalizeHost(secret.domain);
      if (!domain)
        throw new InvalidRequestError(
          `Invalid '${param}.domain': a secret's domain must be one hostname (no wildcard, IP address, scheme or port).`,
          { param: `${param}.domain` },
        );
      if (!matchHost(domain, parsed.rules))
        throw new InvalidRequestError(
          `Invalid '${param}.domain': ${domain} is not covered by network_policy.allowed_domains.`,
          { param: `${param}.domain` },
        );
      if (RESERVED_NAMES.has(secret.name.toUpperCase()) || secret.name.startsWith('BERTH_'))
        throw new InvalidRequestError(
          `Invalid '${param}.name': ${secret.name} is set by the server itself.`,
          { param: `${param}.name` },
        );
      if (names.has(secret.name))
        throw new InvalidRequestError(
          `Invalid '${param}.name': another secret already has the name ${secret.name}.`,
          { param: `${param}.name` },
        );
      names.add(secret.name);
      return { domain, name: secret.name, value: secret.value };
    });
    return {
      policy: { type: 'allowlist', allowedDomains: [...new Set(parsed.rules.map(ruleToString))] },
      secrets: checked,
    };
  }

  attach(containerId: string, policy: AllowlistPolicy, dirKey?: string): Promise<void> {
    return this.proxy.attach(
      containerId,
      storedRules(policy.allowedDomains),
      this.#secretsOf(containerId, policy),
      dirKey,
    );
  }

  detach(containerId: string, dirKey?: string): Promise<void> {
    return this.proxy.detach(containerId, dirKey);
  }

  prepareDir(dirKey: string): Promise<void> {
    return this.proxy.prepareDir(dirKey);
  }

  dirKeys(): Promise<string[]> {
    return this.proxy.dirKeys();
  }

  attachedIds(): string[] {
    return this.proxy.attachedIds();
  }

  /**
   * The clear values live only in the proxy's memory. One that doesn't open (the key changed or
   * is gone) is held as null: its domain is then refused, never tunnelled without its secret.
   */
  #secretsOf(containerId: string, policy: AllowlistPolicy): SandboxSecret[] {
    return (policy.domainSecrets ?? []).map((s) => {
      let value: string | null = null;
      try {
        if (this.options.box) value = this.options.box.open(containerId, s.sealed);
      } catch {
        this.options.log?.warn(
          { containerId, domain: s.domain },
          'a domain secret did not decrypt',
        );
      }
      return { domain: s.domain, placeholder: s.placeholder, value };
    });
  }
}

/** A stored allowlist was normalised at create; one that no longer parses is a bug, loudly. */
function storedRules(domains: string[]): Rule[] {
  const parsed = parseAllowlist(domains, { maxEntries: Number.MAX_SAFE_INTEGER });
  if (!parsed.ok) throw new Error(`stored allowlist no longer parses: ${parsed.message}`);
  return parsed.rules;
}
