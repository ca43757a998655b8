/** The egress proxy, from the domain's side: which sandbox may reach which hosts. */
export interface EgressController {
  /** Starts enforcing a sandbox's allowlist (before the sandbox exists). Idempotent. */
  attach(containerId: string, allowedDomains: string[]): Promise<void>;
  /** Stops serving a sandbox. Idempotent. */
  detach(containerId: string): Promise<void>;
}
