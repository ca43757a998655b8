import { describe, expect, it } from 'vitest';
import {
  aContainer,
  FakeContainerStore,
  FakeEgressController,
  FakeSandboxRuntime,
  never,
} from '@berth/testkit/fakes';
import { ManualClock } from '../clock.js';
import type { NetworkPolicy } from '../container.js';
import {
  ContainerExpiredError,
  DeadlineExceededError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  SandboxGoneError,
  SandboxUnresponsiveError,
} from '../errors.js';
import { newId } from '../ids.js';
import {
  ContainersService,
  type ContainerSeeder,
  type ContainersServiceOptions,
  type CreateContainerInput,
} from './containers-service.js';

const PROJECT = 'proj_a';
const input = (over: Partial<CreateContainerInput> = {}): CreateContainerInput => ({
  name: 'box',
  expiresAfterMinutes: 20,
  memoryLimit: '4g',
  networkPolicy: { type: 'disabled' },
  ...over,
});
const allowlist: NetworkPolicy = { type: 'allowlist', allowedDomains: ['pypi.org'] };

/** A service over fresh fakes on a fixed clock; options override the defaults. */
function setup(over: Partial<ContainersServiceOptions> = {}) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
  const store = new FakeContainerStore(clock);
  const runtime = new FakeSandboxRuntime(clock);
  const egress = new FakeEgressController();
  const cleanupErrors: string[] = [];
  const unresponsive: string[] = [];
  const service = new ContainersService({
    store,
    runtime,
    clock,
    maxLivePerProject: 3,
    egress,
    onCleanupError: (_e, id) => cleanupErrors.push(id),
    onUnresponsive: (id, reason) => unresponsive.push(`${id}: ${reason}`),
    ...over,
  });
  return { clock, store, runtime, egress, service, cleanupErrors, unresponsive };
}

const wedged = (id: string, operation: string) => new SandboxUnresponsiveError(id, operation, 250);

describe('ContainersService.create', () => {
  it('writes the row before the sandbox exists, then shows it running', async () => {
    const { store, runtime, service, clock } = setup();
    const seen: unknown[] = [];
    runtime.hooks.create = (spec) => {
      seen.push(store.row(spec.containerId)?.status);
    };

    const created = await service.create(PROJECT, input());

    expect(seen).toEqual(['creating']);
    expect(created).toMatchObject({
      projectId: PROJECT,
      name: 'box',
      status: 'running',
      lastActiveAt: clock.now(),
      createdAt: Math.floor(clock.now().getTime() / 1000),
    });
    expect(store.row(created.id)?.status).toBe('running');
    expect(runtime.created).toEqual([
      {
        containerId: created.id,
        projectId: PROJECT,
        uid: created.sandboxUid,
        memoryLimitBytes: 4 * 1024 ** 3,
        network: { type: 'disabled' },
      },
    ]);
    expect(runtime.sandboxes.get(created.id)?.running).toBe(true);
  });

  it('refuses a create past the live cap with 429 and creates nothing', async () => {
    const { store, runtime, service, clock } = setup({ maxLivePerProject: 2 });
    await service.create(PROJECT, input());
    await service.create(PROJECT, input());

    const error = await service.create(PROJECT, input()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ status: 429 });
    expect(store.rows).toHaveLength(2);
    expect(runtime.created).toHaveLength(2);
    // Another project has its own cap; and once the clock passes their deadline, they stop counting.
    await expect(service.create('proj_b', input())).resolves.toMatchObject({ status: 'running' });
    clock.advance(20 * 60_000);
    await expect(service.create(PROJECT, input())).resolves.toMatchObject({ status: 'running' });
  });

  it('picks another sandbox uid when the store says one is taken', async () => {
    const { store, runtime } = setup();
    store.seed(aContainer({ sandboxUid: 200_001 }));
    store.seed(aContainer({ sandboxUid: 200_002, status: 'failed' }));
    const picks = [200_001, 200_002, 200_003];
    const { service } = setup({ store, runtime, newSandboxUid: () => picks.shift()! });

    const created = await service.create(PROJECT, input());

    expect(created.sandboxUid).toBe(200_003);
    expect(picks).toEqual([]);
    expect(runtime.created.map((s) => s.uid)).toEqual([200_003]);
  });

  it('gives up after 8 taken uids, leaving nothing behind', async () => {
    const { store, runtime } = setup();
    store.seed(aContainer({ sandboxUid: 200_001 }));
    let picks = 0;
    const { service } = setup({
      store,
      runtime,
      newSandboxUid: () => {
        picks += 1;
        return 200_001;
      },
    });

    await expect(service.create(PROJECT, input())).rejects.toThrow(/no free sandbox uid/);
    expect(picks).toBe(8);
    expect(store.rows).toHaveLength(1);
    expect(runtime.created).toEqual([]);
  });

  it('leaves no row and no sandbox when the sandbox create fails', async () => {
    const { store, runtime, service } = setup();
    const boom = new Error('image missing');
    runtime.hooks.create = () => {
      throw boom;
    };

    await expect(service.create(PROJECT, input())).rejects.toBe(boom);

    expect(store.rows).toEqual([]);
    expect(runtime.sandboxes.size).toBe(0);
    expect(runtime.removed).toEqual([runtime.created[0]!.containerId]);
  });

  it('answers 504 for a sandbox create past its deadline, keeping nothing', async () => {
    const { store, runtime, egress, service } = setup();
    runtime.hooks.create = (spec) => {
      throw wedged(spec.containerId, 'start');
    };

    const error = await service
      .create(PROJECT, input({ networkPolicy: allowlist }))
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).message).toMatch(/did not start .* within 250 ms\. Nothing was kept/);
    expect(store.rows).toEqual([]);
    expect(runtime.sandboxes.size).toBe(0);
    expect(egress.attached.size).toBe(0);
  });

  it('reports a cleanup that fails itself, and still answers with the first error', async () => {
    const { store, runtime, service, cleanupErrors } = setup();
    runtime.hooks.create = () => {
      throw new Error('create failed');
    };
    runtime.hooks.remove = () => {
      throw new Error('engine gone');
    };

    await expect(service.create(PROJECT, input())).rejects.toThrow('create failed');

    const id = runtime.created[0]!.containerId;
    expect(cleanupErrors).toEqual([id]);
    // The row stays `creating`: hidden, and the reconciler finishes it once it is old enough.
    expect(store.row(id)?.status).toBe('creating');
    expect(await service.list(PROJECT, { limit: 10, order: 'asc' })).toEqual({
      items: [],
      hasMore: false,
    });
  });

  describe('with file_ids', () => {
    const seeder = (copy: ContainerSeeder['copy']) => {
      const calls: string[] = [];
      const s: ContainerSeeder = {
        check: async (_p, ids) => {
          calls.push(`check ${ids.join(',')}`);
          if (ids.includes('file-unknown'))
            throw new InvalidRequestError('No such file.', { param: 'file_ids.0' });
        },
        copy: async (p, c, ids) => {
          calls.push(`copy ${ids.join(',')} into ${c.status}`);
          await copy(p, c, ids);
        },
      };
      return { seeder: s, calls };
    };

    it('copies the files after the sandbox starts and before the row is running', async () => {
      const { seeder: s, calls } = seeder(async () => {});
      const { service, store } = setup({ seeder: s });

      const created = await service.create(PROJECT, input({ fileIds: ['file-1', 'file-2'] }));

      expect(calls).toEqual(['check file-1,file-2', 'copy file-1,file-2 into creating']);
      expect(store.row(created.id)?.status).toBe('running');
    });

    it('refuses an unknown file before anything is created', async () => {
      const { seeder: s } = seeder(async () => {});
      const { service, store, runtime } = setup({ seeder: s });

      await expect(
        service.create(PROJECT, input({ fileIds: ['file-unknown'] })),
      ).rejects.toMatchObject({ status: 400, param: 'file_ids.0' });
      expect(store.rows).toEqual([]);
      expect(runtime.created).toEqual([]);
    });

    it('cleans up sandbox, proxy and row when seeding fails', async () => {
      const { seeder: s } = seeder(async () => {
        throw new Error('disk full');
      });
      const { service, store, runtime, egress } = setup({ seeder: s });

      await expect(
        service.create(PROJECT, input({ fileIds: ['file-1'], networkPolicy: allowlist })),
      ).rejects.toThrow('disk full');

      const id = runtime.created[0]!.containerId;
      expect(runtime.sandboxes.size).toBe(0);
      expect(runtime.removed).toEqual([id]);
      expect(egress.calls).toEqual([`attach ${id}`, `detach ${id}`]);
      expect(store.rows).toEqual([]);
    });

    it('are refused on a server without a seeder', async () => {
      const { service } = setup();
      await expect(service.create(PROJECT, input({ fileIds: ['file-1'] }))).rejects.toMatchObject({
        status: 400,
        param: 'file_ids',
      });
    });
  });

  describe('with an allowlist', () => {
    it('attaches the proxy before the sandbox exists', async () => {
      const { service, runtime, egress } = setup();
      const attachedFirst: boolean[] = [];
      runtime.hooks.create = (spec) => {
        attachedFirst.push(egress.attached.has(spec.containerId));
      };

      const created = await service.create(PROJECT, input({ networkPolicy: allowlist }));

      expect(attachedFirst).toEqual([true]);
      expect(egress.attached.get(created.id)).toEqual(['pypi.org']);
      expect(runtime.created[0]?.network).toEqual(allowlist);
    });

    it('is refused, creating nothing, on a server without egress', async () => {
      const { store, runtime } = setup();
      const { service } = setup({ store, runtime, egress: undefined });
      await expect(
        service.create(PROJECT, input({ networkPolicy: allowlist })),
      ).rejects.toMatchObject({ status: 400, param: 'network_policy.type' });
      expect(store.rows).toEqual([]);
      expect(runtime.created).toEqual([]);
    });
  });
});

describe('ContainersService.delete', () => {
  it('hides the row, removes the sandbox, detaches the proxy, then drops the row', async () => {
    const { service, store, runtime, egress } = setup();
    const c = await service.create(PROJECT, input({ networkPolicy: allowlist }));
    const statusWhileRemoving: unknown[] = [];
    runtime.hooks.remove = (id) => {
      statusWhileRemoving.push(store.row(id)?.status);
    };

    await service.delete(PROJECT, c.id);

    expect(statusWhileRemoving).toEqual(['deleting']);
    expect(runtime.sandboxes.size).toBe(0);
    expect(egress.attached.size).toBe(0);
    expect(store.rows).toEqual([]);
  });

  it('answers 404 for a malformed id, an unknown one, or another project', async () => {
    const { service, store } = setup();
    const c = await service.create(PROJECT, input());
    for (const [project, id] of [
      [PROJECT, 'cntr_nope'],
      [PROJECT, newId('container', 1)],
      ['proj_b', c.id],
    ] as const) {
      await expect(service.delete(project, id)).rejects.toBeInstanceOf(NotFoundError);
    }
    expect(store.row(c.id)?.status).toBe('running');
  });

  it('shows the container again, as it was, when Docker fails the removal', async () => {
    const { service, store, runtime } = setup();
    const c = store.seed(aContainer({ projectId: PROJECT, status: 'failed', statusReason: 'oom' }));
    runtime.hooks.remove = () => {
      throw new Error('engine said 500');
    };

    await expect(service.delete(PROJECT, c.id)).rejects.toThrow('engine said 500');

    expect(await service.get(PROJECT, c.id)).toMatchObject({
      status: 'failed',
      statusReason: 'oom',
    });
  });

  it('marks a sandbox that does not answer the removal failed, with a 504', async () => {
    const { service, store, runtime, unresponsive } = setup();
    const c = await service.create(PROJECT, input());
    runtime.hooks.remove = (id) => {
      throw wedged(id, 'remove');
    };

    const error = await service.delete(PROJECT, c.id).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ status: 504, code: 'container_unresponsive' });
    const reason = 'sandbox is not responding (remove took over 250 ms)';
    expect(store.row(c.id)).toMatchObject({ status: 'failed', statusReason: reason });
    expect(unresponsive).toEqual([`${c.id}: ${reason}`]);
  });
});

describe('ContainersService.withSandbox', () => {
  it('marks the container failed when its sandbox is gone, answering container_failed', async () => {
    const { service, store } = setup();
    const c = await service.create(PROJECT, input());

    const error = await service
      .withSandbox(c, () => Promise.reject(new SandboxGoneError(c.id)))
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ status: 400, code: 'container_failed' });
    expect(store.row(c.id)).toMatchObject({ status: 'failed', statusReason: 'sandbox vanished' });
  });

  it('marks an unresponsive sandbox failed and answers 504 container_unresponsive', async () => {
    const { service, store, unresponsive } = setup();
    const c = await service.create(PROJECT, input());

    const error = await service
      .withSandbox(c, () => Promise.reject(wedged(c.id, 'exec')))
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ status: 504, code: 'container_unresponsive' });
    const reason = 'sandbox is not responding (exec took over 250 ms)';
    expect(store.row(c.id)).toMatchObject({ status: 'failed', statusReason: reason });
    expect(unresponsive).toEqual([`${c.id}: ${reason}`]);
    // After that, the container is not usable.
    await expect(service.getUsable(PROJECT, c.id)).rejects.toMatchObject({
      code: 'container_failed',
    });
  });

  it('passes other errors through untouched, leaving the container running', async () => {
    const { service, store } = setup();
    const c = await service.create(PROJECT, input());
    const other = new Error('bug');
    await expect(service.withSandbox(c, () => Promise.reject(other))).rejects.toBe(other);
    expect(store.row(c.id)?.status).toBe('running');
  });
});

describe('ContainersService.getUsable and touch', () => {
  it('is expired once the clock passes last activity plus the minutes, and touch moves that', async () => {
    const { service, clock } = setup();
    const c = await service.create(PROJECT, input({ expiresAfterMinutes: 5 }));

    clock.advance(4 * 60_000);
    await service.touch(await service.getUsable(PROJECT, c.id));
    clock.advance(4 * 60_000);
    await expect(service.getUsable(PROJECT, c.id)).resolves.toMatchObject({ id: c.id });
    clock.advance(60_000);
    await expect(service.getUsable(PROJECT, c.id)).rejects.toBeInstanceOf(ContainerExpiredError);
  });

  it('does not wait on a sandbox to read a row', async () => {
    const { service, runtime } = setup();
    const c = await service.create(PROJECT, input());
    runtime.hooks.inspect = never;
    runtime.hooks.listManaged = never;
    await expect(service.get(PROJECT, c.id)).resolves.toMatchObject({ id: c.id });
    expect((await service.list(PROJECT, { limit: 5, order: 'desc' })).items).toHaveLength(1);
  });
});
