import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { aContainer, FakeContainerStore, FakeSandboxRuntime } from '@berth/testkit/fakes';
import type { ContainerRecord } from '../container.js';
import type { ExpiryStore } from '../ports/expiry-store.js';
import { Reaper } from './reaper.js';

const record = (id: string, lastActiveAt: Date, minutes: number): ContainerRecord =>
  aContainer({ id, name: id, lastActiveAt, expiresAfterMinutes: minutes });

/** The in-memory containers table, holding these rows, on the test's clock. */
function memoryStore(clock: ManualClock, rows: ContainerRecord[]): FakeContainerStore {
  const store = new FakeContainerStore(clock);
  for (const row of rows) store.seed(row);
  return store;
}

function runtime(failing = new Set<string>()): FakeSandboxRuntime {
  const rt = new FakeSandboxRuntime();
  rt.hooks.remove = (id) => {
    if (failing.has(id)) throw new Error(`cannot remove ${id}`);
  };
  return rt;
}

describe('Reaper', () => {
  it('expires exactly the containers past their deadline, with no sleeping', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
    const t = clock.now();
    const store = memoryStore(clock, [
      record('due-1m', new Date(t.getTime() - 60_000), 1),
      record('not-yet', new Date(t.getTime() - 59_999), 1),
      record('due-long', new Date(t.getTime() - 1440 * 60_000), 1440),
      record('fresh', t, 20),
    ]);
    const rt = runtime();
    const reaper = new Reaper({
      store,
      runtime: rt,
      clock,
      concurrency: 2,
      maxPerTick: 100,
      retentionMs: 0,
    });
    expect((await reaper.tick()).expired).toBe(2);
    expect(rt.removed.sort()).toEqual(['due-1m', 'due-long']);
    clock.advance(1);
    expect((await reaper.tick()).expired).toBe(1);
    expect(store.rows.find((r) => r.id === 'not-yet')?.status).toBe('expired');
    expect(store.rows.find((r) => r.id === 'fresh')?.status).toBe('running');
  });

  it('keeps a container whose removal failed running, and retries it on the next tick', async () => {
    const clock = new ManualClock();
    const past = new Date(clock.now().getTime() - 120_000);
    const store = memoryStore(clock, [record('stuck', past, 1), record('ok', past, 1)]);
    const failing = new Set(['stuck']);
    const errors: string[] = [];
    const reaper = new Reaper({
      store,
      runtime: runtime(failing),
      clock,
      concurrency: 1,
      maxPerTick: 10,
      retentionMs: 0,
      onError: (_e, id) => errors.push(id),
    });
    expect(await reaper.tick()).toMatchObject({ expired: 1, failed: 1 });
    expect(errors).toEqual(['stuck']);
    expect(store.rows.find((r) => r.id === 'stuck')?.status).toBe('running');
    failing.clear();
    expect(await reaper.tick()).toMatchObject({ expired: 1, failed: 0 });
    expect(store.rows.every((r) => r.status === 'expired')).toBe(true);
  });

  it('does not retry a failed removal in the same tick when the claim is released before the error returns', async () => {
    // Postgres releases the row lock at rollback, a round trip before the reaper hears of the
    // failure. A second worker that queries in that window must still skip the container.
    const clock = new ManualClock();
    const past = new Date(clock.now().getTime() - 120_000);
    const store = memoryStore(clock, [record('stuck', past, 1)]);
    const rt = new FakeSandboxRuntime();
    let removals = 0;
    rt.hooks.remove = () => {
      removals += 1;
      if (removals === 1) throw new Error('docker said no');
    };
    let failed!: () => void;
    const firstFailed = new Promise<void>((resolve) => (failed = resolve));
    let secondDone!: () => void;
    const secondQueried = new Promise<void>((resolve) => (secondDone = resolve));
    let calls = 0;
    const rollbackWindow: ExpiryStore = {
      purge: (before, limit) => store.purge(before, limit),
      reapOne: async (now, exclude, work) => {
        const call = (calls += 1);
        if (call === 2) await firstFailed;
        try {
          return await store.reapOne(now, exclude, work);
        } catch (error) {
          failed();
          await secondQueried; // the lock is released; the error has not reached the reaper yet
          throw error;
        } finally {
          if (call === 2) secondDone();
        }
      },
    };
    const reaper = new Reaper({
      store: rollbackWindow,
      runtime: rt,
      clock,
      concurrency: 2,
      maxPerTick: 10,
      retentionMs: 0,
    });
    expect(await reaper.tick()).toMatchObject({ expired: 0, failed: 1 });
    expect(removals).toBe(1);
    expect(store.rows[0]?.status).toBe('running');
    expect(await reaper.tick()).toMatchObject({ expired: 1, failed: 0 });
  });

  it('stops claiming when aborted and bounds work per tick', async () => {
    const clock = new ManualClock();
    const past = new Date(clock.now().getTime() - 120_000);
    const store = memoryStore(
      clock,
      Array.from({ length: 10 }, (_, i) => record(`c${i}`, past, 1)),
    );
    const reaper = new Reaper({
      store,
      runtime: runtime(),
      clock,
      concurrency: 3,
      maxPerTick: 4,
      retentionMs: 0,
    });
    expect((await reaper.tick()).expired).toBe(4);
    const controller = new AbortController();
    controller.abort();
    expect((await reaper.tick(controller.signal)).expired).toBe(0);
  });
});
