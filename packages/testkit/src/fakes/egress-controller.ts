import type { AllowlistPolicy, ClearDomainSecret, EgressController } from '@berth/core';
import type { Hooks } from './hooks.js';

/** Which sandboxes the "proxy" serves, and each call in order, for asserting what came first. */
export class FakeEgressController implements EgressController {
  readonly attached = new Map<string, string[]>();
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

  async attach(containerId: string, policy: AllowlistPolicy): Promise<void> {
    this.calls.push(`attach ${containerId}`);
    await this.hooks.attach?.(containerId, policy);
    this.attached.set(containerId, [...policy.allowedDomains]);
  }

  async detach(containerId: string): Promise<void> {
    this.calls.push(`detach ${containerId}`);
    await this.hooks.detach?.(containerId);
    this.attached.delete(containerId);
  }
}
