import { describe, expect, it } from 'vitest';
import {
  aContainer,
  deferred,
  FakeContainerStore,
  FakeSandboxExecutor,
  FakeSandboxRuntime,
  rejection,
} from '@berth/testkit/fakes';
import { ManualClock } from '../clock.js';
import type { ContainerRecord } from '../container.js';
import {
  ContainerExpiredError,
  InvalidRequestError,
  NotFoundError,
  RateLimitError,
  SandboxGoneError,
} from '../errors.js';
import { isId } from '../ids.js';
import { ContainersService } from './containers-service.js';
import { ExecService, type ExecInput, type ExecOutcome } from './exec-service.js';

const PROJECT = 'proj_a';
const cmd = (over: Partial<ExecInput> = {}): ExecInput => ({
  argv: ['sh', '-c', 'true'],
  env: {},
  workdir: '/mnt/data',
  timeoutMs: 5_000,
  ...over,
});

function setup(limits: { maxConcurrent?: number; maxConcurrentTotal?: number } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
  const store = new FakeContainerStore(clock);
  const runtime = new FakeSandboxRuntime(clock);
  const executor = new FakeSandboxExecutor();
  const containers = new ContainersService({ store, runtime, clock, maxLivePerProject: 100 });
  const outcomes: ExecOutcome[] = [];
  const service = new ExecService({
    containers,
    executor,
    runtime,
    clock,
    maxConcurrent: limits.maxConcurrent ?? 2,
    maxConcurrentTotal: limits.maxConcurrentTotal ?? 10,
    maxOutputBytes: 1024,
    onOutcome: (o) => outcomes.push(o),
  });
  /** A running container with its sandbox, last active now. */
  const container = (over: Partial<ContainerRecord> = {}) => {
    const row = store.seed(aContainer({ projectId: PROJECT, lastActiveAt: clock.now(), ...over }));
    runtime.plant(row.id, PROJECT);
    return row;
  };
  /** Makes every exec wait until the returned function is called. */
  const holdExecs = () => {
    const gate = deferred();
    executor.command = () => gate.promise.then(() => ({}));
    return gate.resolve;
  };
  return { clock, store, runtime, executor, service, outcomes, container, holdExecs };
}

describe('ExecService slots', () => {
  it('runs at most maxConcurrent per sandbox, answers 429 past it, and frees the slot after', async () => {
    const { service, container, holdExecs, executor } = setup({ maxConcurrent: 2 });
    const a = container();
    const b = container();
    const release = holdExecs();

    const running = [service.exec(PROJECT, a.id, cmd()), service.exec(PROJECT, a.id, cmd())];
    const third = await rejection(service.exec(PROJECT, a.id, cmd()));

    expect(third).toBeInstanceOf(RateLimitError);
    expect(third).toMatchObject({ status: 429 });
    expect((third as Error).message).toMatch(/already running 2 commands/);
    // Another sandbox has slots of its own.
    const other = service.exec(PROJECT, b.id, cmd());
    await Promise.resolve();
    release();
    await Promise.all([...running, other]);
    expect(executor.requests.map((r) => r.containerId)).toEqual([a.id, a.id, b.id]);

    await expect(service.exec(PROJECT, a.id, cmd())).resolves.toMatchObject({ exitCode: 0 });
  });

  it('runs at most maxConcurrentTotal across sandboxes', async () => {
    const { service, container, holdExecs } = setup({ maxConcurrent: 5, maxConcurrentTotal: 3 });
    const boxes = [container(), container(), container(), container()];
    const release = holdExecs();

    const running = boxes.slice(0, 3).map((c) => service.exec(PROJECT, c.id, cmd()));
    const error = await rejection(service.exec(PROJECT, boxes[3]!.id, cmd()));

    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as Error).message).toMatch(/This server is running 3 commands/);
    release();
    await Promise.all(running);
    await expect(service.exec(PROJECT, boxes[3]!.id, cmd())).resolves.toBeDefined();
  });

  it('takes the slot at reserve, before the command is known, and releases it once', async () => {
    const { service, container } = setup({ maxConcurrent: 1 });
    const c = container();

    const lease = await service.reserve(PROJECT, c.id);
    await expect(service.reserve(PROJECT, c.id)).rejects.toBeInstanceOf(RateLimitError);
    lease.release();
    lease.release(); // a second release must not free a slot it does not hold
    const again = await service.reserve(PROJECT, c.id);
    await expect(service.reserve(PROJECT, c.id)).rejects.toBeInstanceOf(RateLimitError);
    again.release();
  });

  it('frees the slot when the command fails', async () => {
    const { service, container, executor } = setup({ maxConcurrent: 1 });
    const c = container();
    executor.command = () => Promise.reject(new Error('stream broke'));

    await expect(service.exec(PROJECT, c.id, cmd())).rejects.toThrow('stream broke');
    executor.command = () => ({});
    await expect(service.exec(PROJECT, c.id, cmd())).resolves.toMatchObject({ exitCode: 0 });
  });

  it('refuses an expired container before taking a slot or running anything', async () => {
    const { service, container, clock, executor } = setup({ maxConcurrent: 1 });
    const c = container({ expiresAfterMinutes: 1 });
    clock.advance(60_000);

    await expect(service.exec(PROJECT, c.id, cmd())).rejects.toBeInstanceOf(ContainerExpiredError);
    expect(executor.requests).toEqual([]);
  });
});

describe('ExecService.exec', () => {
  it('sends the request in the domain terms, as the sandbox uid, with the output cap', async () => {
    const { service, container, executor } = setup();
    const c = container();
    const signal = new AbortController().signal;

    await service.exec(
      PROJECT,
      c.id,
      cmd({
        argv: ['python3', '-c', 'print(1)'],
        env: { A: '1' },
        stdin: Buffer.from('x'),
        signal,
      }),
    );

    expect(executor.requests).toEqual([
      {
        execId: expect.stringMatching(/^exec_/),
        containerId: c.id,
        uid: c.sandboxUid,
        argv: ['python3', '-c', 'print(1)'],
        env: { A: '1' },
        workdir: '/mnt/data',
        stdin: Buffer.from('x'),
        timeoutMs: 5_000,
        maxOutputBytes: 1024,
        signal,
      },
    ]);
  });

  it('counts as activity: last_active_at moves when the command starts and when it ends', async () => {
    const { service, container, executor, store, clock } = setup();
    const c = container({ expiresAfterMinutes: 1 });
    const created = clock.now();
    const started = new Date(created.getTime() + 10_000);
    executor.command = () => {
      expect(store.row(c.id)?.lastActiveAt).toEqual(started);
      clock.advance(50_000); // a long command
      return {};
    };

    clock.advance(10_000);
    await service.exec(PROJECT, c.id, cmd());

    expect(store.row(c.id)?.lastActiveAt).toEqual(new Date(started.getTime() + 50_000));
    // Without the touch after, the container would have expired at started + 1 min.
    clock.advance(30_000);
    await expect(service.reserve(PROJECT, c.id)).resolves.toBeDefined();
  });

  it('writes last activity once a second, not twice an exec: a touch within the second is a no-op', async () => {
    const { service, container, store, clock } = setup();
    const c = container({ lastActiveAt: new Date(clock.now().getTime() - 5_000) });
    const writes: Date[] = [];
    const touch = store.touch.bind(store);
    store.touch = (id, at) => {
      writes.push(at);
      return touch(id, at);
    };

    for (let i = 0; i < 5; i++) {
      await service.exec(PROJECT, c.id, cmd());
      clock.advance(100);
    }
    expect(writes).toHaveLength(1);
    clock.advance(1_000);
    await service.exec(PROJECT, c.id, cmd());

    expect(writes).toHaveLength(2);
    expect(store.row(c.id)?.lastActiveAt).toEqual(writes[1]);
  });

  it('reports every outcome with its id, container and time', async () => {
    const { service, container, executor, outcomes, clock } = setup();
    const c = container();
    executor.command = () => ({ exitCode: 3, stdout: Buffer.from('out'), durationMs: 12 });

    const outcome = await service.exec(PROJECT, c.id, cmd());

    expect(outcome).toMatchObject({
      exitCode: 3,
      containerId: c.id,
      createdAt: Math.floor(clock.now().getTime() / 1000),
      oomKilled: false,
      durationMs: 12,
    });
    expect(outcome.stdout.toString()).toBe('out');
    expect(isId('exec', outcome.id)).toBe(true);
    expect(outcomes).toEqual([outcome]);
  });

  it('marks the container failed when a kill took the whole sandbox down (OOM)', async () => {
    const { service, container, executor, runtime, store } = setup();
    const c = container();
    executor.command = () => {
      runtime.stop(c.id, { exitCode: 137, oomKilled: true });
      return { exitCode: 137 };
    };

    const outcome = await service.exec(PROJECT, c.id, cmd());

    expect(outcome).toMatchObject({ exitCode: 137, oomKilled: true });
    expect(store.row(c.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox was killed for exceeding its memory limit',
    });
  });

  it('leaves the container running when only the command was killed', async () => {
    const { service, container, executor, store } = setup();
    const c = container();
    executor.command = () => ({ exitCode: 137 });

    await expect(service.exec(PROJECT, c.id, cmd())).resolves.toMatchObject({ oomKilled: false });
    executor.command = () => ({ exitCode: 137, timedOut: true });
    await expect(service.exec(PROJECT, c.id, cmd())).resolves.toMatchObject({ timedOut: true });
    expect(store.row(c.id)?.status).toBe('running');
  });

  it('marks the container failed when its sandbox is gone', async () => {
    const { service, container, executor, store, outcomes } = setup();
    const c = container();
    executor.command = () => Promise.reject(new SandboxGoneError(c.id));

    await expect(service.exec(PROJECT, c.id, cmd())).rejects.toMatchObject({
      status: 400,
      code: 'container_failed',
    });
    expect(store.row(c.id)).toMatchObject({ status: 'failed', statusReason: 'sandbox vanished' });
    expect(outcomes).toEqual([]);
  });

  it('refuses arguments past the limits before running anything', async () => {
    const { service, container, executor } = setup();
    const c = container();
    await expect(
      service.exec(PROJECT, c.id, cmd({ argv: ['echo', 'x'.repeat(1024 * 1024)] })),
    ).rejects.toMatchObject({ status: 400 });
    expect(executor.requests).toEqual([]);
  });
});

describe('ExecService.reserveEarly', () => {
  const OTHER = 'proj_b';
  /** Holds every container lookup until the returned function is called. */
  const holdLookups = (store: FakeContainerStore) => {
    const gate = deferred();
    store.hooks.get = () => gate.promise;
    return () => {
      store.hooks.get = undefined;
      gate.resolve();
    };
  };

  it('begins the exec of a container it has used before the lookup answers, and runs it only after', async () => {
    const { service, container, executor, store } = setup();
    const c = container();
    await service.exec(PROJECT, c.id, cmd());
    const answer = holdLookups(store);

    const lease = await service.reserveEarly(PROJECT, c.id);
    const running = service.run(lease, cmd({ argv: ['echo', 'two'] }));
    await new Promise((r) => setImmediate(r));

    expect(executor.prepared.map((r) => r.argv)).toEqual([
      ['sh', '-c', 'true'],
      ['echo', 'two'],
    ]);
    expect(executor.requests).toHaveLength(1);
    answer();
    await expect(running).resolves.toMatchObject({ exitCode: 0, containerId: c.id });
    expect(executor.requests.map((r) => r.argv)).toEqual([
      ['sh', '-c', 'true'],
      ['echo', 'two'],
    ]);
    lease.release();
  });

  it('never runs the begun exec when the lookup refuses: deleted, expired or failed since', async () => {
    const { service, container, executor, store, clock } = setup();
    const gone = container();
    const expired = container({ expiresAfterMinutes: 1 });
    const failed = container();
    for (const c of [gone, expired, failed]) await service.exec(PROJECT, c.id, cmd());
    store.row(gone.id)!.status = 'deleting';
    store.row(failed.id)!.status = 'failed';
    clock.advance(61_000);

    for (const [c, error] of [
      [gone, NotFoundError],
      [expired, ContainerExpiredError],
      [failed, InvalidRequestError],
    ] as const) {
      const lease = await service.reserveEarly(PROJECT, c.id);
      await expect(service.run(lease, cmd())).rejects.toBeInstanceOf(error);
      lease.release();
      // Refused once, it is looked up first again: the refusal comes before anything is begun.
      await expect(service.reserveEarly(PROJECT, c.id)).rejects.toBeInstanceOf(error);
    }
    expect(executor.prepared).toHaveLength(6);
    expect(executor.requests).toHaveLength(3);
  });

  it("is no shortcut into another project's container: that one is looked up, and refused, first", async () => {
    const { service, container, executor } = setup();
    const c = container();
    await service.exec(PROJECT, c.id, cmd());

    await expect(service.reserveEarly(OTHER, c.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(executor.prepared).toHaveLength(1);
  });

  it('looks a container it has not used up first, as reserve does', async () => {
    const { service, store, executor, clock } = setup();
    const unknown = aContainer({ projectId: PROJECT, lastActiveAt: clock.now() });
    await expect(service.reserveEarly(PROJECT, unknown.id)).rejects.toBeInstanceOf(NotFoundError);
    store.seed({ ...unknown, status: 'running' });
    const answer = holdLookups(store);
    let reserved = false;
    const lease = service.reserveEarly(PROJECT, unknown.id).then((l) => ((reserved = true), l));
    await new Promise((r) => setImmediate(r));
    expect(reserved).toBe(false);
    answer();
    (await lease).release();
    expect(executor.prepared).toHaveLength(0);
  });
});
