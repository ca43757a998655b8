import type { AllowlistPolicy, ClearDomainSecret, EgressController } from '@berth/core';
import type { Hooks } from './hooks.js';

/** Which sandboxes the "proxy" serves, and each call in order, for asserting what came first. */
export class FakeEgressController implements EgressController {
  readonly attached = new Map<string, string[]>();
  /** The egress directories present, by name (a container id, or a pool slot's id). */
  readonly dirs = new Set<string>();
  readonly #dirOf = new Map<string, string>();
  readonly calls: string[] = [];
  hooks: Hooks<EgressController> = {};

  /** Accepts every policy as given, lowercased (the real check lives in @berth/egress). */
  checkPolicy(
    requested: AllowlistPolicy,
    secrets: ClearDomainSecret[],
  ): { policy: AllowlistPolicy; secrets: ClearDomainSecret[] } {
    return {
      policy: {
        type: 'allowlist',
        allowedDomains: requested.allowedDomains.map((d) => d.toLowerCase()),
      },
      secrets,
    };
  }

  attachedIds(): string[] {
    return [...this.attached.keys()];
  }

  async attach(containerId: string, policy: AllowlistPolicy, dirKey?: string): Promise<void> {
    this.calls.push(
      dirKey && dirKey !== containerId
        ? `attach ${containerId} in ${dirKey}`
        : `attach ${containerId}`,
    );
    await this.hooks.attach?.(containerId, policy, dirKey);
    this.attached.set(containerId, [...policy.allowedDomains]);
    this.#dirOf.set(containerId, dirKey ?? containerId);
    this.dirs.add(dirKey ?? containerId);
  }

  async detach(containerId: string, dirKey?: string): Promise<void> {
    this.calls.push(`detach ${containerId}`);
    await this.hooks.detach?.(containerId, dirKey);
    this.attached.delete(containerId);
    const own = this.#dirOf.get(containerId);
    if (own) this.dirs.delete(own);
    this.#dirOf.delete(containerId);
    this.dirs.delete(dirKey ?? containerId);
  }

  async prepareDir(dirKey: string): Promise<void> {
    this.calls.push(`prepare ${dirKey}`);
    await this.hooks.prepareDir?.(dirKey);
    this.dirs.add(dirKey);
  }

  async dirKeys(): Promise<string[]> {
    return [...this.dirs];
  }
}
