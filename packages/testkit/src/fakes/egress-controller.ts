import type { EgressController, NetworkPolicy } from '@berth/core';
import type { Hooks } from './hooks.js';

/** Which sandboxes the "proxy" serves, and each call in order, for asserting what came first. */
export class FakeEgressController implements EgressController {
  readonly attached = new Map<string, string[]>();
  readonly calls: string[] = [];
  hooks: Hooks<EgressController> = {};

  /** Accepts every policy as given, lowercased (the real check lives in @berth/egress). */
  checkPolicy(requested: Extract<NetworkPolicy, { type: 'allowlist' }>): NetworkPolicy {
    return {
      type: 'allowlist',
      allowedDomains: requested.allowedDomains.map((d) => d.toLowerCase()),
    };
  }

  attachedIds(): string[] {
    return [...this.attached.keys()];
  }

  async attach(containerId: string, allowedDomains: string[]): Promise<void> {
    this.calls.push(`attach ${containerId}`);
    await this.hooks.attach?.(containerId, allowedDomains);
    this.attached.set(containerId, [...allowedDomains]);
  }

  async detach(containerId: string): Promise<void> {
    this.calls.push(`detach ${containerId}`);
    await this.hooks.detach?.(containerId);
    this.attached.delete(containerId);
  }
}
