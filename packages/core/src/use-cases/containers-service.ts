import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import type { ContainerRecord, MemoryLimit, NetworkPolicy } from '../container.js';
import { memoryLimitBytes, sandboxKey } from '../container.js';
import { randomInt } from 'node:crypto';
import {
  DeadlineExceededError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  SandboxUnresponsiveError,
} from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page } from '../pagination.js';
import type { ContainerListFilter, ContainerStore } from '../ports/container-store.js';
import type { SandboxRuntime } from '../ports/sandbox-runtime.js';
import type { EgressController } from '../ports/egress-controller.js';
import { ContainerAccess } from './container-access.js';
import type {
  ContainerSkillInfo,
  ContainerSkillStore,
  SkillInstaller,
} from '../ports/skill-installer.js';
import { skillsBudgetBytes, skillsFootprint } from '../skill-placement.js';
import type { ContainerSkillParam, ResolvedSkill } from './skills-service.js';
import { newPlaceholder, type SecretBox } from '../secret-box.js';
import type { SandboxPool } from './sandbox-pool.js';

export interface CreateContainerInput {
  name: string;
  expiresAfterMinutes: number;
  memoryLimit: MemoryLimit;
  networkPolicy: NetworkPolicy;
  /**
   * `domain_secrets` in clear, validated by the caller (each domain allowlisted, names unique):
   * sealed here with the container id before anything is stored, then dropped.
   */
  domainSecrets?: { domain: string; name: string; value: string }[];
  /** Files API ids copied into /mnt/data before the create answers. */
  fileIds?: string[];
  /** Skills placed read-only under /mnt/skills/<name> before the create answers. */
  skills?: ContainerSkillParam[];
  /** Puts more into the new sandbox before it is shown as running (a restore's files). */
  seed?: (container: ContainerRecord) => Promise<void>;
}

/** What skills at create need: resolving them (the skills use-case), placing them, showing them. */
export interface ContainerSkills {
  /** Stops with `budget.over` as soon as the unpacked bytes pass `budget.maxBytes`. */
  resolve(
    projectId: string,
    params: ContainerSkillParam[],
    budget: { maxBytes: number; over: (bytes?: number) => Error },
  ): Promise<ResolvedSkill[]>;
  installer: SkillInstaller;
  store: ContainerSkillStore;
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
  /** Without it, a create with skills is refused. */
  skills?: ContainerSkills;
  /** Enforces allowlist policies; without it, allowlist containers are refused. */
  egress?: EgressController;
  /** Called when cleanup after a failure itself fails; the reconciler will finish the job. */
  onCleanupError?: (error: unknown, containerId: string) => void;
  /** Runs before a deleted container's row goes (its archive's bytes go with it). */
  beforeRemove?: (containerId: string) => Promise<void>;
  /** Called when a sandbox is found wedged and marked failed (for logs and metrics). */
  onUnresponsive?: (containerId: string, reason: string) => void;
  /** Seals `domain_secrets` for storage; without it, they are refused. */
  secrets?: SecretBox;
  /** The warm pool; without it every create is cold. */
  pool?: SandboxPool;
  /** Picks a sandbox uid; the store refuses one a live sandbox has, and another is picked. */
  newSandboxUid?: () => number;
  /** Shared with exec and files; built from store, clock, onUnresponsive and onFailed when not given. */
  access?: ContainerAccess;
  /** Lifecycle hooks for the event log and metrics; called after the fact, never awaited. */
  onCreated?: (record: ContainerRecord, durationMs: number) => void;
  onCreateFailed?: (error: unknown, durationMs: number) => void;
  onDeleted?: (record: ContainerRecord) => void;
  /** A container became `failed`, with the reason an operator reads. */
  onFailed?: (containerId: string, reason: string) => void;
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
  readonly access: ContainerAccess;

  constructor(private readonly options: ContainersServiceOptions) {
    this.access =
      options.access ??
      new ContainerAccess({
        store: options.store,
        clock: options.clock,
        ...(options.onUnresponsive ? { onUnresponsive: options.onUnresponsive } : {}),
        ...(options.onFailed ? { onFailed: options.onFailed } : {}),
      });
  }

  async create(projectId: string, input: CreateContainerInput): Promise<ContainerRecord> {
    const { clock, seeder, egress } = this.options;
    const fileIds = input.fileIds ?? [];
    let policy = input.networkPolicy;
    let secrets = input.domainSecrets ?? [];
    if (policy.type === 'allowlist') {
      if (!egress)
        throw new InvalidRequestError(
          "network_policy 'allowlist' is not available on this server.",
          { param: 'network_policy.type' },
        );
      ({ policy, secrets } = egress.checkPolicy(policy, secrets));
    }
    if (secrets.length > 0 && (policy.type !== 'allowlist' || !this.options.secrets)) {
      throw new InvalidRequestError(
        'domain_secrets are not available on this server (it has no BERTH_SECRETS_KEY to keep them encrypted).',
        { param: 'network_policy.domain_secrets', code: 'unsupported_parameter' },
      );
    }
    if (fileIds.length > 0) {
      if (!seeder)
        throw new InvalidRequestError('file_ids are not supported on this server.', {
          param: 'file_ids',
        });
      await seeder.check(projectId, fileIds);
    }
    // Every skill is resolved, unpacked and measured before anything exists.
    const skills = await this.resolveSkills(projectId, input);
    const now = clock.now();
    const started = performance.now();
    try {
      const created = await this.#create(
        projectId,
        { ...input, networkPolicy: policy, domainSecrets: secrets },
        skills,
        now,
      );
      this.options.onCreated?.(created, performance.now() - started);
      return created;
    } catch (error) {
      this.options.onCreateFailed?.(error, performance.now() - started);
      throw error;
    }
  }

  /** After validation: `input.networkPolicy` and `input.domainSecrets` are the checked ones. */
  async #create(
    projectId: string,
    input: CreateContainerInput,
    skills: Awaited<ReturnType<ContainersService['resolveSkills']>>,
    now: Date,
  ): Promise<ContainerRecord> {
    const { store, runtime, seeder, egress } = this.options;
    const fileIds = input.fileIds ?? [];
    const policy = input.networkPolicy;
    const secrets = input.domainSecrets ?? [];
    const createdAt = unixSeconds(now);
    const id = newId('container', now);
    const box = this.options.secrets;
    const networkPolicy: NetworkPolicy =
      policy.type === 'allowlist' && secrets.length > 0 && box
        ? {
            ...policy,
            domainSecrets: secrets.map((s) => ({
              domain: s.domain,
              name: s.name,
              placeholder: newPlaceholder(),
              sealed: box.seal(id, s.value),
            })),
          }
        : policy;
    const record: ContainerRecord = {
      id,
      projectId,
      name: input.name,
      createdAt,
      status: 'creating',
      lastActiveAt: now,
      expiresAfterMinutes: input.expiresAfterMinutes,
      memoryLimit: input.memoryLimit,
      networkPolicy,
      statusReason: null,
      sandboxUid: 0,
    };
    const pickUid = this.options.newSandboxUid ?? randomSandboxUid;
    let outcome: Awaited<ReturnType<typeof store.insertCreating>> = 'uid_taken';
    // A warm sandbox if the pool has one. An allowlist slot has its egress directory mounted
    // already; with domain_secrets the sandbox's environment (CA, placeholders) is fixed at its
    // create, and skills need a file system of their own: those stay cold.
    let fromPool = false;
    if (this.options.pool && !skills && secrets.length === 0) {
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
      // The proxy listens before the sandbox exists (or, for a claimed one, before anyone may use
      // it, in the directory its slot mounts): there is never a moment without enforcement.
      if (networkPolicy.type === 'allowlist')
        await egress!.attach(record.id, networkPolicy, sandboxKey(record));
      if (!fromPool)
        await runtime.create({
          containerId: record.id,
          projectId,
          uid: record.sandboxUid,
          memoryLimitBytes: memoryLimitBytes(input.memoryLimit),
          network: networkPolicy,
          ...(skills ? { skills: skills.footprint } : {}),
        });
      if (skills) {
        await this.options.skills!.installer.install(record.id, skills.resolved);
        await this.options.skills!.store.save(record.id, skills.shown);
      }
      if (fileIds.length > 0) await seeder?.copy(projectId, record, fileIds);
      if (input.seed) await input.seed(record);
      await store.markRunning(record.id);
    } catch (error) {
      await this.#undoCreate(record);
      if (error instanceof SandboxUnresponsiveError)
        throw new DeadlineExceededError(
          `Docker did not ${error.operation} the container's sandbox within ${error.deadlineMs} ms. Nothing was kept; please retry.`,
        );
      throw error;
    } finally {
      // The claim is done with: now the filler may replace the sandbox it took.
      if (fromPool) this.options.pool?.kick();
    }
    return { ...record, status: 'running', ...(skills ? { skills: skills.shown } : {}) };
  }

  /** Resolves, unpacks and measures a create's skills against its sandbox's budget. */
  async resolveSkills(projectId: string, input: CreateContainerInput) {
    const params = input.skills ?? [];
    if (params.length === 0) return null;
    if (!this.options.skills)
      throw new InvalidRequestError('skills are not supported on this server.', {
        param: 'skills',
      });
    const budget = skillsBudgetBytes(memoryLimitBytes(input.memoryLimit));
    const over = (bytes?: number) =>
      new InvalidRequestError(
        `The skills need ${bytes === undefined ? `more than ${budget}` : bytes} bytes in the container; with memory_limit '${input.memoryLimit}' they may use at most ${budget}. Use fewer or smaller skills, or a larger memory_limit.`,
        { param: 'skills' },
      );
    const resolved = await this.options.skills.resolve(projectId, params, {
      maxBytes: budget,
      over,
    });
    const footprint = skillsFootprint(resolved);
    if (footprint.bytes > budget) throw over(footprint.bytes);
    const shown: ContainerSkillInfo[] = resolved.map((r) => ({
      name: r.name,
      description: r.description,
      path: r.path,
    }));
    return { resolved, footprint, shown };
  }

  /** The records with the skills each was created with (for the container object). */
  async withSkills(records: ContainerRecord[]): Promise<ContainerRecord[]> {
    const store = this.options.skills?.store;
    if (!store || records.length === 0) return records;
    const byId = await store.forContainers(records.map((r) => r.id));
    return records.map((r) => {
      const skills = byId.get(r.id);
      return skills ? { ...r, skills } : r;
    });
  }

  async #undoCreate(record: ContainerRecord): Promise<void> {
    const id = record.id;
    try {
      await this.options.runtime.remove(sandboxKey(record));
      await this.options.egress?.detach(id, sandboxKey(record));
      await this.options.store.remove(id);
    } catch (cleanupError) {
      this.options.onCleanupError?.(cleanupError, id);
    }
  }

  get(projectId: string, id: string): Promise<ContainerRecord> {
    return this.access.get(projectId, id);
  }

  getUsable(projectId: string, id: string): Promise<ContainerRecord> {
    return this.access.getUsable(projectId, id);
  }

  touch(record: ContainerRecord): Promise<void> {
    return this.access.touch(record);
  }

  markFailed(id: string, reason: string): Promise<void> {
    return this.access.markFailed(id, reason);
  }

  withSandbox<T>(record: ContainerRecord, call: () => Promise<T>): Promise<T> {
    return this.access.withSandbox(record, call);
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
        const reason = await this.access.markUnresponsive(id, error);
        throw new DeadlineExceededError(
          `Container '${id}' could not be deleted: ${reason}. It is marked failed and will be removed when Docker allows.`,
          { code: 'container_unresponsive' },
        );
      }
      await store.setStatus(id, record.status, record.statusReason);
      throw error;
    }
    await this.options.egress?.detach(id, sandboxKey(record));
    await this.options.beforeRemove?.(id);
    await store.remove(id);
    this.options.onDeleted?.(record);
  }
}
