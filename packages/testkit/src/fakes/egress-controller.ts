import type { EgressController } from '@berth/core';
import type { Hooks } from './hooks.js';

/** Which sandboxes the "proxy" serves, and each call in order, for asserting what came first. */
export class FakeEgressController implements EgressController {
  readonly attached = new Map<string, string[]>();
  readonly calls: string[] = [];
  hooks: Hooks<EgressController> = {};

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
