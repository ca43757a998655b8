import {
  ManualClock,
  type Clock,
  type ManagedSandbox,
  type SandboxRuntime,
  type SandboxSpec,
  type SandboxState,
} from '@berth/core';
import type { Hooks } from './hooks.js';

export interface FakeSandbox {
  containerId: string;
  projectId: string;
  /** null for a sandbox the fake was handed (an orphan), not one it created. */
  spec: SandboxSpec | null;
  createdAt: Date;
  running: boolean;
  oomKilled: boolean;
  exitCode: number | null;
}

/**
 * Sandboxes in memory, with the runtime port's contract: create leaves a running sandbox or
 * nothing, remove is idempotent, inspect answers null for a missing one. Every sandbox counts as
 * carrying this service's labels.
 */
export class FakeSandboxRuntime implements SandboxRuntime {
  readonly sandboxes = new Map<string, FakeSandbox>();
  /** Every spec create was called with, in order, including ones that failed. */
  readonly created: SandboxSpec[] = [];
  /** Every id remove was called with and that succeeded, in order (missing ones included). */
  readonly removed: string[] = [];
  hooks: Hooks<SandboxRuntime> = {};

  constructor(readonly clock: Clock = new ManualClock()) {}

  async create(spec: SandboxSpec): Promise<void> {
    this.created.push(spec);
    await this.hooks.create?.(spec);
    if (this.sandboxes.has(spec.containerId))
      throw new Error(`sandbox ${spec.containerId} already exists`);
    this.sandboxes.set(spec.containerId, {
      containerId: spec.containerId,
      projectId: spec.projectId,
      spec,
      createdAt: this.clock.now(),
      running: true,
      oomKilled: false,
      exitCode: null,
    });
  }

  async remove(containerId: string): Promise<void> {
    await this.hooks.remove?.(containerId);
    this.sandboxes.delete(containerId);
    this.removed.push(containerId);
  }

  async inspect(containerId: string): Promise<SandboxState | null> {
    await this.hooks.inspect?.(containerId);
    const s = this.sandboxes.get(containerId);
    return s
      ? { containerId, running: s.running, oomKilled: s.oomKilled, exitCode: s.exitCode }
      : null;
  }

  async listManaged(): Promise<ManagedSandbox[]> {
    await this.hooks.listManaged?.();
    return [...this.sandboxes.values()].map((s) => ({
      containerId: s.containerId,
      projectId: s.projectId,
      createdAt: s.createdAt,
      running: s.running,
    }));
  }

  async ping(): Promise<void> {
    await this.hooks.ping?.();
  }

  /** A labelled sandbox that no create made (a crash between steps, another replica's leftover). */
  plant(containerId: string, projectId = 'proj_test'): FakeSandbox {
    const s: FakeSandbox = {
      containerId,
      projectId,
      spec: null,
      createdAt: this.clock.now(),
      running: true,
      oomKilled: false,
      exitCode: null,
    };
    this.sandboxes.set(containerId, s);
    return s;
  }

  /** The sandbox's init died: it stays, stopped, as Docker would show it. */
  stop(containerId: string, how: { exitCode?: number; oomKilled?: boolean } = {}): void {
    const s = this.sandboxes.get(containerId);
    if (!s) throw new Error(`no sandbox ${containerId}`);
    s.running = false;
    s.exitCode = how.exitCode ?? 137;
    s.oomKilled = how.oomKilled ?? false;
  }

  /** Removed behind the service's back, as an operator might (not recorded in `removed`). */
  vanish(containerId: string): void {
    this.sandboxes.delete(containerId);
  }
}
