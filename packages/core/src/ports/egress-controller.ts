import type { AllowlistPolicy } from '../container.js';

/** A `domain_secrets` entry as the client sent it; it never reaches storage in this form. */
export interface ClearDomainSecret {
  domain: string;
  name: string;
  value: string;
}

/** One judgement of the egress proxy: a sandbox's attempt to reach `host:port`. */
export interface EgressDecision {
  containerId: string;
  decision: 'allowed' | 'denied';
  host: string;
  port: number;
  reason?: string;
  bytesUp: number;
  bytesDown: number;
}

/** What the proxy has seen of one sandbox since this process started serving it. */
export interface EgressStats {
  allowed: number;
  denied: number;
  bytesUp: number;
  bytesDown: number;
  /** The most recent decisions, newest last. */
  recent: EgressDecision[];
  /** Placeholders replaced by secrets, per domain with secrets (counts only, never values). */
  substitutions: Record<string, number>;
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
  /**
   * Starts enforcing a sandbox's allowlist and secrets (before the sandbox exists). Idempotent.
   * `dirKey`: the name of the egress directory its sandbox mounts, when not the container id (a
   * warm-pool slot's); stats and decisions stay the container's.
   */
  attach(containerId: string, policy: AllowlistPolicy, dirKey?: string): Promise<void>;
  /**
   * Stops serving a sandbox and removes its egress directory (the one it was attached with, and
   * `dirKey`'s, default the container id's). Idempotent; `detach(slotId)` removes a slot's.
   */
  detach(containerId: string, dirKey?: string): Promise<void>;
  /** Creates the empty egress directory a warm-pool sandbox mounts before its proxy attaches. */
  prepareDir(dirKey: string): Promise<void>;
  /** The names of every egress directory present (for the sweep of orphans). */
  dirKeys(): Promise<string[]>;
  /** The sandboxes served now. */
  attachedIds(): string[];
}
