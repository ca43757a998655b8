import { randomBytes } from 'node:crypto';
import { describe, expect } from 'vitest';
import {
  ContainersService,
  ManualClock,
  Reconciler,
  UnavailableError,
  type ContainerStore,
  type SandboxRuntime,
} from '@berth/core';
import { PgApiKeyStore, PgContainerStore } from '@berth/db';
import { aSandboxSpec, labelledRuntime, type TestDatabase } from '@berth/testkit';
import { test } from '@berth/testkit/fixtures';

/** Wraps an adapter so one named method fails, to walk the create path step by step. */
function failing<T extends object>(target: T, method: keyof T, error: Error): T {
  return new Proxy(target, {
    get(t, key, receiver) {
      const value = Reflect.get(t, key, receiver);
      if (key !== method || typeof value !== 'function')
        return typeof value === 'function' ? value.bind(t) : value;
      return async () => {
        throw error;
      };
    },
  });
}

const clock = new ManualClock(Date.now());

const input = {
  name: 'c',
  expiresAfterMinutes: 20,
  memoryLimit: '1g' as const,
  networkPolicy: { type: 'disabled' as const },
};
const service = (s: ContainerStore, r: SandboxRuntime) =>
  new ContainersService({ store: s, runtime: r, clock, maxLivePerProject: 100 });

/**
 * Each test's world: its own database (with a project and a store on it), and a runtime under a
 * label instance of its own whose sandboxes are removed afterwards.
 */
const it = test.extend('world', async ({ database }, { onCleanup }) => {
  const runtime = labelledRuntime(`crash${randomBytes(4).toString('hex')}`);
  onCleanup(async () => {
    for (const s of await runtime.listManaged()) await runtime.remove(s.containerId);
  });
  const store = new PgContainerStore(database.pool);
  const projectId = await new PgApiKeyStore(database.pool).ensureProject('p');
  return { database, runtime, store, projectId };
});

// Reconcile later than any row's last update (rows are stamped with the database's clock).
const reconciler = (store: ContainerStore, runtime: SandboxRuntime) =>
  new Reconciler({
    store,
    runtime,
    clock: new ManualClock(Date.now() + 60_000),
    creatingGraceMs: 0,
  });

/** No orphan (a sandbox without a live row) and no ghost (a row without a sandbox). */
async function expectConsistent(runtime: SandboxRuntime, database: TestDatabase): Promise<void> {
  const sandboxes = (await runtime.listManaged()).map((s) => s.containerId).sort();
  const rows = await database.pool.query<{ id: string; status: string }>(
    'select id, status from containers order by id',
  );
  const live = rows.rows.filter((r) => r.status === 'running').map((r) => r.id);
  expect(rows.rows.filter((r) => r.status === 'creating' || r.status === 'deleting')).toEqual([]);
  expect(sandboxes).toEqual(live);
}

describe('a create that fails at each step', () => {
  const boom = new UnavailableError('injected');

  it('fails at the row insert: nothing exists', async ({
    world: { database, runtime, store, projectId },
  }) => {
    await expect(
      service(failing(store, 'insertCreating', boom), runtime).create(projectId, input),
    ).rejects.toBe(boom);
    await reconciler(store, runtime).run();
    await expectConsistent(runtime, database);
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('fails creating the sandbox: the row is removed at once', async ({
    world: { database, runtime, store, projectId },
  }) => {
    await expect(
      service(store, failing(runtime, 'create', boom)).create(projectId, input),
    ).rejects.toBe(boom);
    expect((await database.pool.query('select 1 from containers')).rowCount).toBe(0);
    await expectConsistent(runtime, database);
  });

  it('fails marking the row running: the sandbox is removed at once', async ({
    world: { database, runtime, store, projectId },
  }) => {
    await expect(
      service(failing(store, 'markRunning', boom), runtime).create(projectId, input),
    ).rejects.toBe(boom);
    await expectConsistent(runtime, database);
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('fails marking running and cleanup fails too (Postgres gone): reconcile finishes it', async ({
    world: { database, runtime, store, projectId },
  }) => {
    const broken = failing(failing(store, 'markRunning', boom), 'remove', boom);
    await expect(service(broken, runtime).create(projectId, input)).rejects.toBe(boom);
    expect((await runtime.listManaged()).length).toBe(0); // the sandbox went first
    const report = await reconciler(store, runtime).run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent(runtime, database);
  });

  it('is killed after the row, before the sandbox: reconcile removes the row', async ({
    world: { database, runtime, store, projectId },
  }) => {
    // The kill: the sandbox is never made and the undo never finishes, leaving a `creating` row.
    const killed = new Error('process killed');
    await expect(
      service(failing(store, 'remove', killed), failing(runtime, 'create', killed)).create(
        projectId,
        input,
      ),
    ).rejects.toBe(killed);
    expect(
      (await database.pool.query("select 1 from containers where status = 'creating'")).rowCount,
    ).toBe(1);
    const report = await reconciler(store, runtime).run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent(runtime, database);
  });

  it('is killed after the sandbox started, before the row was marked running: reconcile removes both', async ({
    world: { database, runtime, store, projectId },
  }) => {
    const killedAfterStart: SandboxRuntime = new Proxy(runtime, {
      get(t, key, receiver) {
        const value = Reflect.get(t, key, receiver);
        if (key === 'remove')
          return async () => {
            throw new Error('process killed');
          };
        return typeof value === 'function' ? value.bind(t) : value;
      },
    });
    await expect(
      service(failing(store, 'markRunning', boom), killedAfterStart).create(projectId, input),
    ).rejects.toBe(boom);
    expect((await runtime.listManaged()).length).toBe(1);
    const report = await reconciler(store, runtime).run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent(runtime, database);
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('removes a labelled sandbox that has no row at all (an orphan)', async ({
    world: { database, runtime, store, projectId },
  }) => {
    const ok = await service(store, runtime).create(projectId, input);
    await runtime.create(
      aSandboxSpec({ containerId: 'cntr_' + '1'.repeat(48), projectId, uid: 199_999 }),
    );
    const report = await reconciler(store, runtime).run();
    expect(report.orphansRemoved).toBe(1);
    await expectConsistent(runtime, database);
    expect((await runtime.listManaged()).map((s) => s.containerId)).toEqual([ok.id]);
  });

  it('marks a running row whose sandbox vanished as failed', async ({
    world: { runtime, store, projectId },
  }) => {
    const c = await service(store, runtime).create(projectId, input);
    await runtime.remove(c.id);
    const report = await reconciler(store, runtime).run();
    expect(report.markedFailed).toBe(1);
    const row = await store.get(projectId, c.id);
    expect(row).toMatchObject({ status: 'failed', statusReason: 'sandbox vanished' });
  });

  it('a delete whose sandbox removal fails keeps the container visible for a retry', async ({
    world: { database, runtime, store, projectId },
  }) => {
    const c = await service(store, runtime).create(projectId, input);
    await expect(
      service(store, failing(runtime, 'remove', boom)).delete(projectId, c.id),
    ).rejects.toBe(boom);
    expect(await store.get(projectId, c.id)).toMatchObject({ status: 'running' });
    await service(store, runtime).delete(projectId, c.id);
    await expectConsistent(runtime, database);
    expect(await store.get(projectId, c.id)).toBeNull();
  });
});
