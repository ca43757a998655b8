import type { NetworkPolicy } from '../container.js';

/** What a sandbox is, in the domain's words; the Docker adapter translates it. */
export interface SandboxSpec {
  containerId: string;
  projectId: string;
  /** The sandbox's own uid (and gid): no two live sandboxes share one. */
  uid: number;
  memoryLimitBytes: number;
  network: NetworkPolicy;
  /** When set, an empty read-only-to-the-sandbox file system at /mnt/skills of this size. */
  skills?: { bytes: number; inodes: number };
}

export interface SandboxState {
  containerId: string;
  running: boolean;
  oomKilled: boolean;
  exitCode: number | null;
}

export interface ManagedSandbox {
  containerId: string;
  projectId: string;
  /** When Docker created it. */
  createdAt: Date;
  running: boolean;
  /**
   * Set on a warm-pool sandbox (its label); `containerId` is then the slot id, which stays its
   * name after a claim (the claiming container's `poolSlot` says so).
   */
  poolSlot?: string;
}

export interface SandboxRuntime {
  /** Creates and starts the sandbox; when this resolves it runs. Nothing is left on failure. */
  create(spec: SandboxSpec): Promise<void>;
  /** Removes the sandbox and its data. Idempotent: a missing sandbox is not an error. */
  remove(containerId: string): Promise<void>;
  /** The sandbox's state, or null when it does not exist. */
  inspect(containerId: string): Promise<SandboxState | null>;
  /** Every sandbox carrying this service's labels. */
  listManaged(): Promise<ManagedSandbox[]>;
  /** Throws UnavailableError when the engine does not answer. */
  ping(): Promise<void>;
}
