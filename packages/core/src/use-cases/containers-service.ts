import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import type { ContainerRecord, MemoryLimit, NetworkPolicy } from '../container.js';
import { isExpiredAt, memoryLimitBytes } from '../container.js';
import {
  ContainerExpiredError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
} from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page } from '../pagination.js';
import type { ContainerListFilter, ContainerStore } from '../ports/container-store.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { EgressController } from '../ports/egress-controller.js';

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
}

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
    };
    const outcome = await store.insertCreating(record, this.options.maxLivePerProject, now);
    if (outcome === 'over_cap') {
      throw new QuotaExceededError(
        `This project already has ${this.options.maxLivePerProject} live containers, the most it may hold. Delete some, or let them expire, and try again.`,
      );
    }
    try {
      // The proxy listens before the sandbox exists: there is never a moment without enforcement.
      if (policy.type === 'allowlist') await egress!.attach(record.id, policy.allowedDomains);
      await runtime.create({
        containerId: record.id,
        projectId,
        memoryLimitBytes: memoryLimitBytes(input.memoryLimit),
        network: input.networkPolicy,
      });
      if (fileIds.length > 0) await seeder?.copy(projectId, record, fileIds);
      await store.markRunning(record.id);
    } catch (error) {
      await this.#undoCreate(record.id);
      throw error;
    }
    return { ...record, status: 'running' };
  }

  async #undoCreate(id: string): Promise<void> {
    try {
      await this.options.runtime.remove(id);
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
      await runtime.remove(id);
    } catch (error) {
      // Docker failed: show the container again so a retry finds it. A crash here instead
      // leaves a `deleting` row, which reconcile finishes.
      await store.setStatus(id, record.status, record.statusReason);
      throw error;
    }
    await this.options.egress?.detach(id);
    await store.remove(id);
  }
}
