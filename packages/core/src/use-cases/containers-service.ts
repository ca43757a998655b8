import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import type { ContainerRecord, MemoryLimit, NetworkPolicy } from '../container.js';
import { isExpiredAt, memoryLimitBytes, sandboxKey } from '../container.js';
import { randomInt } from 'node:crypto';
import {
  ContainerExpiredError,
  DeadlineExceededError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  SandboxGoneError,
  SandboxUnresponsiveError,
} from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page } from '../pagination.js';
import type { ContainerListFilter, ContainerStore } from '../ports/container-store.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { EgressController } from '../ports/egress-controller.js';
import type { SandboxPool } from './sandbox-pool.js';

export interface CreateContainerInput {
  name: string;
  expiresAfterMinutes: number;
  memoryLimit: MemoryLimit;
  networkPolicy: NetworkPolicy;
  /** Files API ids copied into /mnt/data before the create answers. */
  fileIds?: string[];
}

/** Puts files into a new container; injected so the containers use-case does not own files. */
export interface ContainerSeeder {
  /** Refuses unknown ids (400 naming `file_ids.N`) before anything is created. */
  check(projectId: string, fileIds: string[]): Promise<void>;
  /** Copies them in; runs after the sandbox starts and before the container is shown as running. */
  copy(projectId: string, container: ContainerRecord, fileIds: string[]): Promise<void>;
}

export interface ContainersServiceOptions {
  store: ContainerStore;
  runtime: SandboxRuntime;
  clock: Clock;
  /** Live (not expired) containers one project may hold. */
  maxLivePerProject: number;
  seeder?: ContainerSeeder;
  /** Enforces allowlist policies; without it, allowlist containers are refused. */
  egress?: EgressController;
  /** Called when cleanup after a failure itself fails; the reconciler will finish the job. */
  onCleanupError?: (error: unknown, containerId: string) => void;
  /** Called when a sandbox is found wedged and marked failed (for logs and metrics). */
  onUnresponsive?: (containerId: string, reason: string) => void;
  /** The warm pool; without it every create is cold. */
  pool?: SandboxPool;
  /** Picks a sandbox uid; the store refuses one a live sandbox has, and another is picked. */
  newSandboxUid?: () => number;
}

/** Sandbox uids: far from system and image users (1000, nobody 65534), 16 M of them. */
export const SANDBOX_UID_BASE = 100_000;
const SANDBOX_UID_SPAN = 1 << 24;
const randomSandboxUid = (): number => SANDBOX_UID_BASE + randomInt(SANDBOX_UID_SPAN);

const notFound = (id: string) => new NotFoundError(`No container found with id '${id}'.`);

/**
 * Create, read, list and delete containers. The order of steps is what keeps a crash
 * consistent: the row (status `creating`) is committed before the sandbox exists, so every
 * labelled sandbox has a row to be checked against; a delete hides the row (`deleting`) before
 * removing the sandbox. Whatever a crash leaves half-done, `reconcile` finishes.
 */
export class ContainersService {
  constructor(private readonly options: ContainersServiceOptions) {}

  async create(projectId: string, input: CreateContainerInput): Promise<ContainerRecord> {
    const { store, runtime, clock, seeder, egress } = this.options;
    const fileIds = input.fileIds ?? [];
    const policy = input.networkPolicy;
    if (policy.type === 'allowlist' && !egress) {
      throw new InvalidRequestError("network_policy 'allowlist' is not available on this server.", {
        param: 'network_policy.type',
      });
    }
    if (fileIds.length > 0) {
      if (!seeder)
        throw new InvalidRequestError('file_ids are not supported on this server.', {
          param: 'file_ids',
        });
      await seeder.check(projectId, fileIds);
    }
    const now = clock.now();
    const createdAt = unixSeconds(now);
    const record: ContainerRecord = {
      id: newId('container', createdAt),
      projectId,
      name: input.name,
      createdAt,
      status: 'creating',
      lastActiveAt: now,
      expiresAfterMinutes: input.expiresAfterMinutes,
      memoryLimit: input.memoryLimit,
      networkPolicy: input.networkPolicy,
      statusReason: null,
      sandboxUid: 0,
    };
    const pickUid = this.options.newSandboxUid ?? randomSandboxUid;
    let outcome: Awaited<ReturnType<typeof store.insertCreating>> = 'uid_taken';
    // A warm sandbox if the pool has one (allowlist sandboxes need their proxy mount: cold).
    let fromPool = false;
    if (this.options.pool && policy.type === 'disabled') {
      const claim = await this.options.pool.claim(record, this.options.maxLivePerProject, now);
      if (claim.outcome === 'over_cap') outcome = 'over_cap';
      if (claim.outcome === 'claimed') {
        record.sandboxUid = claim.slot.sandboxUid;
        record.poolSlot = claim.slot.slotId;
        outcome = 'inserted';
        fromPool = true;
      }
    }
    for (let attempt = 0; outcome === 'uid_taken' && attempt < 8; attempt++) {
      record.sandboxUid = pickUid();
      outcome = await store.insertCreating(record, this.options.maxLivePerProject, now);
    }
    if (outcome === 'uid_taken') throw new Error('no free sandbox uid after 8 tries');
    if (outcome === 'over_cap') {
      throw new QuotaExceededError(
        `This project already has ${this.options.maxLivePerProject} live containers, the most it may hold. Delete some, or let them expire, and try again.`,
      );
    }
    try {
      // The proxy listens before the sandbox exists: there is never a moment without enforcement.
      if (policy.type === 'allowlist') await egress!.attach(record.id, policy.allowedDomains);
      if (!fromPool)
        await runtime.create({
          containerId: record.id,
          projectId,
          uid: record.sandboxUid,
          memoryLimitBytes: memoryLimitBytes(input.memoryLimit),
          network: input.networkPolicy,
        });
      if (fileIds.length > 0) await seeder?.copy(projectId, record, fileIds);
      await store.markRunning(record.id);
    } catch (error) {
      await this.#undoCreate(record);
      if (error instanceof SandboxUnresponsiveError)
        throw new DeadlineExceededError(
          `Docker did not ${error.operation} the container's sandbox within ${error.deadlineMs} ms. Nothing was kept; please retry.`,
        );
      throw error;
    }
    return { ...record, status: 'running' };
  }

  /**
   * Runs a call against a container's sandbox and says what its failure means for the container:
   * a sandbox that is gone, or wedged (a Docker call past its deadline while the engine answers),
   * makes the container `failed` with the reason, so the row tells the truth and the reconciler
   * removes the sandbox when Docker allows.
   */
  async withSandbox<T>(record: ContainerRecord, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof SandboxGoneError) {
        await this.markFailed(record.id, 'sandbox vanished');
        throw new InvalidRequestError(
          `Container '${record.id}' has failed (its sandbox is gone); create a new one.`,
          { code: 'container_failed' },
        );
      }
      if (error instanceof SandboxUnresponsiveError) {
        const reason = `sandbox is not responding (${error.operation} took over ${error.deadlineMs} ms)`;
        await this.markFailed(record.id, reason);
        this.options.onUnresponsive?.(record.id, reason);
        throw new DeadlineExceededError(
          `Container '${record.id}' is not responding: ${reason}. It is marked failed and will be removed; create a new one.`,
          { code: 'container_unresponsive' },
        );
      }
      throw error;
    }
  }

  async #undoCreate(record: ContainerRecord): Promise<void> {
    const id = record.id;
    try {
      await this.options.runtime.remove(sandboxKey(record));
      await this.options.egress?.detach(id);
      await this.options.store.remove(id);
    } catch (cleanupError) {
      this.options.onCleanupError?.(cleanupError, id);
    }
  }

  async get(projectId: string, id: string): Promise<ContainerRecord> {
    if (!isId('container', id)) throw notFound(id);
    const record = await this.options.store.get(projectId, id);
    if (!record) throw notFound(id);
    return record;
  }

  /** A container that may be used now: visible, running and not past its deadline. */
  async getUsable(projectId: string, id: string): Promise<ContainerRecord> {
    const record = await this.get(projectId, id);
    if (record.status === 'expired' || isExpiredAt(record, this.options.clock.now())) {
      throw new ContainerExpiredError();
    }
    if (record.status === 'failed') {
      throw new InvalidRequestError(
        `Container '${id}' has failed (${record.statusReason ?? 'its sandbox is gone'}); create a new one.`,
        { code: 'container_failed' },
      );
    }
    return record;
  }

  /** Activity moves the expiry deadline. */
  async touch(record: ContainerRecord): Promise<void> {
    await this.options.store.touch(record.id, this.options.clock.now());
  }

  /** The sandbox behind a container died or vanished: say so instead of `running`. */
  async markFailed(id: string, reason: string): Promise<void> {
    await this.options.store.setStatus(id, 'failed', reason);
  }

  async list(projectId: string, filter: ContainerListFilter): Promise<Page<ContainerRecord>> {
    return this.options.store.list(projectId, filter);
  }

  async delete(projectId: string, id: string): Promise<void> {
    if (!isId('container', id)) throw notFound(id);
    const { store, runtime } = this.options;
    const record = await store.markDeleting(projectId, id);
    if (!record) throw notFound(id);
    try {
      await runtime.remove(sandboxKey(record));
    } catch (error) {
      // Docker failed: show the container again so a retry finds it (never a hidden row while its
      // sandbox lingers). A wedged sandbox shows as failed; the reconciler removes it when Docker
      // allows. A crash here instead leaves a `deleting` row, which reconcile finishes.
      if (error instanceof SandboxUnresponsiveError) {
        const reason = `sandbox is not responding (${error.operation} took over ${error.deadlineMs} ms)`;
        await store.setStatus(id, 'failed', reason);
        this.options.onUnresponsive?.(id, reason);
        throw new DeadlineExceededError(
          `Container '${id}' could not be deleted: ${reason}. It is marked failed and will be removed when Docker allows.`,
          { code: 'container_unresponsive' },
        );
      }
      await store.setStatus(id, record.status, record.statusReason);
      throw error;
    }
    await this.options.egress?.detach(id);
    await store.remove(id);
  }
}
