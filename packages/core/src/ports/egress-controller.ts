import type { AllowlistPolicy } from '../container.js';

/** A `domain_secrets` entry as the client sent it; it never reaches storage in this form. */
export interface ClearDomainSecret {
  domain: string;
  name: string;
  value: string;
}

/** The egress proxy, from the domain's side: which sandbox may reach which hosts, with which secrets. */
export interface EgressController {
  /**
   * A requested allowlist policy and its secrets, validated and normalised (hosts lowercased,
   * punycode, duplicates dropped; each secret's domain one allowlisted host, its name neither
   * reserved nor repeated); throws InvalidRequestError naming the bad entry, never quoting a
   * value. Runs before anything is created.
   */
  checkPolicy(
    requested: AllowlistPolicy,
    secrets: ClearDomainSecret[],
  ): { policy: AllowlistPolicy; secrets: ClearDomainSecret[] };
  /** Starts enforcing a sandbox's allowlist and secrets (before the sandbox exists). Idempotent. */
  attach(containerId: string, policy: AllowlistPolicy): Promise<void>;
  /** Stops serving a sandbox. Idempotent. */
  detach(containerId: string): Promise<void>;
  /** The sandboxes served now. */
  attachedIds(): string[];
}
