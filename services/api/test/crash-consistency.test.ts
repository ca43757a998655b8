import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ContainersService,
  ManualClock,
  Reconciler,
  UnavailableError,
  type ContainerStore,
  type SandboxRuntime,
} from '@berth/core';
import { PgApiKeyStore, PgContainerStore } from '@berth/db';
import { DockerClient, DockerSandboxRuntime, defaultSandboxLimits } from '@berth/sandbox-docker';
import { createTestDatabase, sandboxImage } from '@berth/testkit';

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

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let runtime: DockerSandboxRuntime;
let store: PgContainerStore;
let projectId: string;
const clock = new ManualClock(Date.now());

beforeEach(async () => {
  db = await createTestDatabase();
  runtime = new DockerSandboxRuntime({
    ...defaultSandboxLimits,
    client: new DockerClient(),
    image: sandboxImage(),
    instance: `crash${randomBytes(4).toString('hex')}`,
  });
  store = new PgContainerStore(db.pool);
  projectId = await new PgApiKeyStore(db.pool).ensureProject('p');
});
afterEach(async () => {
  for (const s of await runtime.listManaged()) await runtime.remove(s.containerId);
  await db[Symbol.asyncDispose]();
});

const input = {
  name: 'c',
  expiresAfterMinutes: 20,
  memoryLimit: '1g' as const,
  networkPolicy: { type: 'disabled' as const },
};
const service = (s: ContainerStore, r: SandboxRuntime) =>
  new ContainersService({ store: s, runtime: r, clock, maxLivePerProject: 100 });
// Reconcile later than any row's last update (rows are stamped with the database's clock).
const reconciler = () =>
  new Reconciler({
    store,
    runtime,
    clock: new ManualClock(Date.now() + 60_000),
    creatingGraceMs: 0,
  });

/** No orphan (a sandbox without a live row) and no ghost (a row without a sandbox). */
async function expectConsistent(): Promise<void> {
  const sandboxes = (await runtime.listManaged()).map((s) => s.containerId).sort();
  const rows = await db.pool.query<{ id: string; status: string }>(
    'select id, status from containers order by id',
  );
  const live = rows.rows.filter((r) => r.status === 'running').map((r) => r.id);
  expect(rows.rows.filter((r) => r.status === 'creating' || r.status === 'deleting')).toEqual([]);
  expect(sandboxes).toEqual(live);
}

describe('a create that fails at each step', () => {
  const boom = new UnavailableError('injected');

  it('fails at the row insert: nothing exists', async () => {
    await expect(
      service(failing(store, 'insertCreating', boom), runtime).create(projectId, input),
    ).rejects.toBe(boom);
    await reconciler().run();
    await expectConsistent();
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('fails creating the sandbox: the row is removed at once', async () => {
    await expect(
      service(store, failing(runtime, 'create', boom)).create(projectId, input),
    ).rejects.toBe(boom);
    expect((await db.pool.query('select 1 from containers')).rowCount).toBe(0);
    await expectConsistent();
  });

  it('fails marking the row running: the sandbox is removed at once', async () => {
    await expect(
      service(failing(store, 'markRunning', boom), runtime).create(projectId, input),
    ).rejects.toBe(boom);
    await expectConsistent();
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('fails marking running and cleanup fails too (Postgres gone): reconcile finishes it', async () => {
    const broken = failing(failing(store, 'markRunning', boom), 'remove', boom);
    await expect(service(broken, runtime).create(projectId, input)).rejects.toBe(boom);
    expect((await runtime.listManaged()).length).toBe(0); // the sandbox went first
    const report = await reconciler().run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent();
  });

  it('is killed after the row, before the sandbox: reconcile removes the row', async () => {
    // The kill: the sandbox is never made and the undo never finishes, leaving a `creating` row.
    const killed = new Error('process killed');
    await expect(
      service(failing(store, 'remove', killed), failing(runtime, 'create', killed)).create(
        projectId,
        input,
      ),
    ).rejects.toBe(killed);
    expect(
      (await db.pool.query("select 1 from containers where status = 'creating'")).rowCount,
    ).toBe(1);
    const report = await reconciler().run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent();
  });

  it('is killed after the sandbox started, before the row was marked running: reconcile removes both', async () => {
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
    const report = await reconciler().run();
    expect(report.abandonedFinished).toBe(1);
    await expectConsistent();
    expect((await runtime.listManaged()).length).toBe(0);
  });

  it('removes a labelled sandbox that has no row at all (an orphan)', async () => {
    const ok = await service(store, runtime).create(projectId, input);
    await runtime.create({
      containerId: 'cntr_' + '1'.repeat(48),
      projectId,
      uid: 199_999,
      memoryLimitBytes: 1024 ** 3,
      network: { type: 'disabled' },
    });
    const report = await reconciler().run();
    expect(report.orphansRemoved).toBe(1);
    await expectConsistent();
    expect((await runtime.listManaged()).map((s) => s.containerId)).toEqual([ok.id]);
  });

  it('marks a running row whose sandbox vanished as failed', async () => {
    const c = await service(store, runtime).create(projectId, input);
    await runtime.remove(c.id);
    const report = await reconciler().run();
    expect(report.markedFailed).toBe(1);
    const row = await store.get(projectId, c.id);
    expect(row).toMatchObject({ status: 'failed', statusReason: 'sandbox vanished' });
  });

  it('a delete whose sandbox removal fails keeps the container visible for a retry', async () => {
    const c = await service(store, runtime).create(projectId, input);
    await expect(
      service(store, failing(runtime, 'remove', boom)).delete(projectId, c.id),
    ).rejects.toBe(boom);
    expect(await store.get(projectId, c.id)).toMatchObject({ status: 'running' });
    await service(store, runtime).delete(projectId, c.id);
    await expectConsistent();
    expect(await store.get(projectId, c.id)).toBeNull();
  });
});
