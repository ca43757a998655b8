import type { NetworkPolicy } from '../container.js';

/** The egress proxy, from the domain's side: which sandbox may reach which hosts. */
export interface EgressController {
  /**
   * A requested allowlist policy, validated and normalised (lowercased, punycode, duplicates
   * dropped); throws InvalidRequestError naming the bad entry. Runs before anything is created.
   */
  checkPolicy(requested: Extract<NetworkPolicy, { type: 'allowlist' }>): NetworkPolicy;
  /** Starts enforcing a sandbox's allowlist (before the sandbox exists). Idempotent. */
  attach(containerId: string, allowedDomains: string[]): Promise<void>;
  /** Stops serving a sandbox. Idempotent. */
  detach(containerId: string): Promise<void>;
  /** The sandboxes served now. */
  attachedIds(): string[];
}
