import type { Clock } from '../clock.js';
import type { ContainerRecord } from '../container.js';
import { isExpiredAt } from '../container.js';
import {
  ContainerExpiredError,
  DeadlineExceededError,
  InvalidRequestError,
  NotFoundError,
  SandboxGoneError,
  SandboxUnresponsiveError,
} from '../errors.js';
import { isId } from '../ids.js';
import type { ContainerStore } from '../ports/container-store.js';

export interface ContainerAccessOptions {
  store: ContainerStore;
  clock: Clock;
  /** Called when a sandbox is found wedged and marked failed (for logs and metrics). */
  onUnresponsive?: (containerId: string, reason: string) => void;
  /** A container became `failed`, with the reason an operator reads (the event log). */
  onFailed?: (containerId: string, reason: string) => void;
}

const notFound = (id: string) => new NotFoundError(`No container found with id '${id}'.`);

/** Why a wedged sandbox's container is failed, in words an operator can act on. */
export const unresponsiveReason = (error: SandboxUnresponsiveError): string =>
  `sandbox is not responding (${error.operation} took over ${error.deadlineMs} ms)`;

/**
 * Finding a container and using its sandbox: what exec, files and the containers use case all
 * need, and nothing more (so none of them depends on another). Every use is activity; a sandbox
 * that is gone or wedged makes its container `failed`, so the row tells the truth.
 */
export class ContainerAccess {
  constructor(private readonly options: ContainerAccessOptions) {}

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

  /**
   * Activity moves the expiry deadline. `last_active_at` is shown and compared in whole seconds,
   * so a touch in the second the record was last touched changes nothing and is skipped: an exec
   * loop costs Postgres a write a second, not two an exec. `record` then holds the new time.
   */
  async touch(record: ContainerRecord): Promise<void> {
    const now = this.options.clock.now();
    if (Math.floor(now.getTime() / 1000) <= Math.floor(record.lastActiveAt.getTime() / 1000))
      return;
    await this.options.store.touch(record.id, now);
    record.lastActiveAt = now;
  }

  /** The sandbox behind a container died or vanished: say so instead of `running`. */
  async markFailed(id: string, reason: string): Promise<void> {
    await this.options.store.setStatus(id, 'failed', reason);
    this.options.onFailed?.(id, reason);
  }

  /** A wedged sandbox: its container is failed, and the operator hears of it. */
  async markUnresponsive(id: string, error: SandboxUnresponsiveError): Promise<string> {
    const reason = unresponsiveReason(error);
    await this.markFailed(id, reason);
    this.options.onUnresponsive?.(id, reason);
    return reason;
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
        const reason = await this.markUnresponsive(record.id, error);
        throw new DeadlineExceededError(
          `Container '${record.id}' is not responding: ${reason}. It is marked failed and will be removed; create a new one.`,
          { code: 'container_unresponsive' },
        );
      }
      throw error;
    }
  }
}

/** What exec and files use of a container (ContainersService offers the same). */
export type ContainerUse = Pick<
  ContainerAccess,
  'get' | 'getUsable' | 'touch' | 'markFailed' | 'withSandbox'
>;
