import type { AllowlistPolicy } from '../container.js';

/** The egress proxy, from the domain's side: which sandbox may reach which hosts, with which secrets. */
export interface EgressController {
  /** Starts enforcing a sandbox's allowlist (before the sandbox exists). Idempotent. */
  attach(containerId: string, policy: AllowlistPolicy): Promise<void>;
  /** Stops serving a sandbox. Idempotent. */
  detach(containerId: string): Promise<void>;
}
