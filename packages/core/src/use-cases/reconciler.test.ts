import { describe, expect, it } from 'vitest';
import { aContainer, FakeContainerStore, FakeSandboxRuntime, never } from '@berth/testkit/fakes';
import { ManualClock } from '../clock.js';
import type { ContainerRecord } from '../container.js';
import { SandboxUnresponsiveError } from '../errors.js';
import { Reconciler, runningContainers, type ReconcilerOptions } from './reconciler.js';

const GRACE_MS = 5 * 60_000;

function setup(over: Partial<ReconcilerOptions> = {}) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
  const store = new FakeContainerStore(clock);
  const runtime = new FakeSandboxRuntime(clock);
  const errors: string[] = [];
  const reconciler = new Reconciler({
    store,
    runtime,
    clock,
    creatingGraceMs: GRACE_MS,
    onError: (id) => errors.push(id),
    ...over,
  });
  /** A row in `status` with its sandbox running, as the service leaves them. */
  const live = (
    status: ContainerRecord['status'] = 'running',
    over: Partial<ContainerRecord> = {},
  ) => {
    const row = store.seed(aContainer({ status, lastActiveAt: clock.now(), ...over }));
    runtime.plant(row.id, row.projectId);
    return row;
  };
  return { clock, store, runtime, reconciler, errors, live };
}

describe('Reconciler.run', () => {
  it('leaves a consistent world alone', async () => {
    const { reconciler, store, runtime, live } = setup();
    const rows = [live('running'), live('running'), live('creating')];

    expect(await reconciler.run()).toEqual({
      orphansRemoved: 0,
      abandonedFinished: 0,
      markedFailed: 0,
      poolSlotsRemoved: 0,
      errors: 0,
    });
    expect(store.rows.map((r) => r.status)).toEqual(['running', 'running', 'creating']);
    expect([...runtime.sandboxes.keys()]).toEqual(rows.map((r) => r.id));
    expect(runtime.removed).toEqual([]);
  });

  it('removes labelled sandboxes that have no live row', async () => {
    const { reconciler, store, runtime, live } = setup();
    const kept = live('running');
    const orphan = runtime.plant(aContainer().id);
    // An expired or failed row does not own a sandbox any more: its sandbox is an orphan too.
    const expired = store.seed(aContainer({ status: 'expired' }));
    runtime.plant(expired.id);

    const report = await reconciler.run();

    expect(report).toMatchObject({ orphansRemoved: 2, errors: 0 });
    expect(runtime.removed.sort()).toEqual([orphan.containerId, expired.id].sort());
    expect([...runtime.sandboxes.keys()]).toEqual([kept.id]);
    expect(store.row(expired.id)?.status).toBe('expired');
  });

  it('marks a running row whose sandbox vanished, stopped or was OOM-killed failed, with why', async () => {
    const { reconciler, store, runtime, live } = setup();
    const vanished = live();
    const stopped = live();
    const oom = live();
    runtime.vanish(vanished.id);
    runtime.stop(stopped.id, { exitCode: 2 });
    runtime.stop(oom.id, { exitCode: 137, oomKilled: true });

    const report = await reconciler.run();

    expect(report).toMatchObject({ markedFailed: 3, orphansRemoved: 0, errors: 0 });
    expect(store.row(vanished.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox vanished',
    });
    expect(store.row(stopped.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox stopped (exit code 2)',
    });
    expect(store.row(oom.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox was killed for exceeding its memory limit',
    });
    // The stopped sandboxes are removed; the row stays to tell the client.
    expect(runtime.sandboxes.size).toBe(0);
  });

  it('marks a running row whose sandbox does not answer inspect failed', async () => {
    const { reconciler, store, runtime, live } = setup();
    const row = live();
    runtime.vanish(row.id);
    runtime.hooks.inspect = (id) => {
      throw new SandboxUnresponsiveError(id, 'inspect', 100);
    };

    expect(await reconciler.run()).toMatchObject({ markedFailed: 1, errors: 0 });
    expect(store.row(row.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox is not responding (inspect took over 100 ms)',
    });
  });

  it('asks Docker again about a row that became running after the listing', async () => {
    const { reconciler, store, runtime, live } = setup();
    const row = live('running');
    // The listing was taken before this sandbox existed; inspect sees it running.
    const sandbox = runtime.sandboxes.get(row.id)!;
    runtime.vanish(row.id);
    runtime.hooks.inspect = (id) => {
      if (id === row.id) runtime.sandboxes.set(id, sandbox);
    };

    expect(await reconciler.run()).toMatchObject({ markedFailed: 0, errors: 0 });
    expect(store.row(row.id)?.status).toBe('running');
    expect(runtime.removed).toEqual([]);
  });

  it('finishes creates and deletes a crash left half-done, sparing young creates', async () => {
    const { reconciler, store, runtime, clock, live } = setup();
    const oldCreating = live('creating');
    const deleting = live('deleting');
    const deletingWithoutSandbox = store.seed(aContainer({ status: 'deleting' }));
    clock.advance(GRACE_MS + 1);
    const youngCreating = live('creating');

    const report = await reconciler.run();

    expect(report).toMatchObject({ abandonedFinished: 3, orphansRemoved: 0, errors: 0 });
    expect(store.rows.map((r) => r.id)).toEqual([youngCreating.id]);
    expect([...runtime.sandboxes.keys()]).toEqual([youngCreating.id]);
    expect(runtime.removed.sort()).toEqual(
      [oldCreating.id, deleting.id, deletingWithoutSandbox.id].sort(),
    );
  });

  it('does not let one stuck sandbox stall the run; the next run retries it', async () => {
    const { store, runtime, live } = setup();
    const { reconciler, errors } = setup({
      store,
      runtime,
      clock: store.clock,
      concurrency: 2,
      itemDeadlineMs: 50,
    });
    const stuck = runtime.plant(aContainer().id);
    const orphans = Array.from({ length: 5 }, () => runtime.plant(aContainer().id));
    const vanished = live();
    runtime.vanish(vanished.id);
    runtime.hooks.remove = (id) => (id === stuck.containerId ? never() : undefined);

    const report = await reconciler.run();

    expect(report).toMatchObject({ orphansRemoved: 5, markedFailed: 1, errors: 1 });
    expect(errors).toEqual([stuck.containerId]);
    expect(runtime.removed).toEqual(expect.arrayContaining(orphans.map((o) => o.containerId)));
    expect(store.row(vanished.id)?.status).toBe('failed');

    runtime.hooks.remove = undefined;
    expect(await reconciler.run()).toMatchObject({ orphansRemoved: 1, errors: 0 });
    expect(runtime.sandboxes.size).toBe(0);
  });

  it('counts an item that fails and goes on with the rest', async () => {
    const { reconciler, store, runtime, errors, clock } = setup();
    const a = store.seed(aContainer({ status: 'deleting' }));
    const b = store.seed(aContainer({ status: 'deleting' }));
    clock.advance(1);
    runtime.hooks.remove = (id) => {
      if (id === a.id) throw new Error('engine said 500');
    };

    expect(await reconciler.run()).toMatchObject({ abandonedFinished: 1, errors: 1 });
    expect(errors).toEqual([a.id]);
    expect(store.rows.map((r) => r.id)).toEqual([a.id]);
    expect(store.row(b.id)).toBeUndefined();
  });
});

describe('runningContainers', () => {
  it('walks every running row, page by page', async () => {
    const store = new FakeContainerStore();
    const running = Array.from({ length: 7 }, () => store.seed(aContainer()).id).sort();
    store.seed(aContainer({ status: 'expired' }));
    const pages: number[] = [];
    const listRunning = store.listRunning.bind(store);

    const seen: string[] = [];
    for await (const row of runningContainers(
      {
        listRunning: async (limit, after) => {
          const rows = await listRunning(limit, after);
          pages.push(rows.length);
          return rows;
        },
      },
      3,
    ))
      seen.push(row.id);

    expect(seen).toEqual(running);
    expect(pages).toEqual([3, 3, 1, 0]);
  });
});
