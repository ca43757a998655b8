import { describe, expect, it } from 'vitest';
import { FakeContainerStore, FakeEgressController } from '@berth/testkit/fakes';
import { ManualClock } from '../clock.js';
import type { ContainerRecord, NetworkPolicy } from '../container.js';
import { newId } from '../ids.js';
import type {
  ClaimOutcome,
  PoolNetwork,
  PoolSizes,
  PoolSlot,
  PoolStore,
  ReserveOutcome,
  SandboxPoolRuntime,
} from '../ports/sandbox-pool.js';
import { ContainersService } from './containers-service.js';
import { SandboxPool, type SandboxPoolOptions } from './sandbox-pool.js';

const SCOPE = '/run/berth/egress';

/** Slot rows in memory; a claim moves the oldest matching idle slot into the container store. */
class MemoryPoolStore implements PoolStore {
  readonly slots = new Map<string, PoolSlot>();
  readonly claims: (string | null)[] = [];
  constructor(private readonly containers: FakeContainerStore) {}

  async reserve(slot: PoolSlot, target: number): Promise<ReserveOutcome> {
    const same = [...this.slots.values()].filter(
      (s) =>
        s.memoryLimit === slot.memoryLimit &&
        s.network === slot.network &&
        s.egressScope === slot.egressScope,
    );
    if (same.length >= target) return 'full';
    this.slots.set(slot.slotId, { ...slot });
    return 'reserved';
  }
  async markIdle(slotId: string): Promise<void> {
    const slot = this.slots.get(slotId);
    if (slot) slot.state = 'idle';
  }
  async remove(slotId: string): Promise<void> {
    this.slots.delete(slotId);
  }
  async claim(
    record: ContainerRecord,
    _maxLive: number,
    _now: Date,
    egressScope: string | null,
  ): Promise<ClaimOutcome> {
    this.claims.push(egressScope);
    const slot = [...this.slots.values()].find(
      (s) =>
        s.state === 'idle' &&
        s.memoryLimit === record.memoryLimit &&
        s.network === record.networkPolicy.type &&
        s.egressScope === egressScope,
    );
    if (!slot) return { outcome: 'empty' };
    this.slots.delete(slot.slotId);
    this.containers.seed({ ...record, sandboxUid: slot.sandboxUid, poolSlot: slot.slotId });
    return { outcome: 'claimed', slot };
  }
  async abandonClaim(containerId: string): Promise<void> {
    await this.containers.remove(containerId);
  }
  async list(): Promise<PoolSlot[]> {
    return [...this.slots.values()];
  }
  async liveSlots(slotIds: string[]): Promise<Set<string>> {
    const claimed = this.containers.rows.map((r) => r.poolSlot);
    return new Set(slotIds.filter((id) => this.slots.has(id) || claimed.includes(id)));
  }
}

/** Pool sandboxes in memory, with the order of every call. */
class MemoryPoolRuntime implements SandboxPoolRuntime {
  readonly running = new Map<string, PoolNetwork>();
  constructor(
    readonly calls: string[],
    readonly fail: { create?: boolean } = {},
  ) {}
  async createPooled(spec: { slotId: string; network: PoolNetwork }): Promise<void> {
    this.calls.push(`create ${spec.slotId} ${spec.network}`);
    if (this.fail.create) throw new Error('docker said no');
    this.running.set(spec.slotId, spec.network);
  }
  async runsPooled(slotId: string): Promise<boolean> {
    return this.running.has(slotId);
  }
  async removePooled(slotId: string): Promise<void> {
    this.calls.push(`remove ${slotId}`);
    this.running.delete(slotId);
  }
}

function setup(sizes: PoolSizes, over: Partial<SandboxPoolOptions> = {}) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
  const containers = new FakeContainerStore(clock);
  const store = new MemoryPoolStore(containers);
  const egress = new FakeEgressController();
  const runtime = new MemoryPoolRuntime(egress.calls);
  const events: string[] = [];
  const pool = new SandboxPool({
    store,
    runtime,
    clock,
    sizes,
    egress,
    egressScope: SCOPE,
    fillIntervalMs: 0,
    onClaim: (limit, network) => events.push(`claim ${limit}/${network}`),
    onMiss: (limit, network) => events.push(`miss ${limit}/${network}`),
    ...over,
  });
  return { clock, containers, store, egress, runtime, pool, events };
}

const allowlist: NetworkPolicy = { type: 'allowlist', allowedDomains: ['pypi.org'] };
const record = (networkPolicy: NetworkPolicy, clock: ManualClock): ContainerRecord => ({
  id: newId('container', clock.now()),
  projectId: 'proj_a',
  name: 'box',
  createdAt: Math.floor(clock.now().getTime() / 1000),
  status: 'creating',
  lastActiveAt: clock.now(),
  expiresAfterMinutes: 20,
  memoryLimit: '1g',
  networkPolicy,
  statusReason: null,
  sandboxUid: 0,
});

describe('SandboxPool with allowlist slots', () => {
  it('fills each network’s pool, an allowlist slot’s egress directory before its sandbox', async () => {
    const { pool, store, egress } = setup({ disabled: { '1g': 1 }, allowlist: { '1g': 2 } });
    expect(await pool.fillOnce()).toBe(3);
    const slots = await store.list();
    expect(slots.map((s) => [s.network, s.egressScope, s.state]).sort()).toEqual([
      ['allowlist', SCOPE, 'idle'],
      ['allowlist', SCOPE, 'idle'],
      ['disabled', null, 'idle'],
    ]);
    for (const s of slots.filter((s) => s.network === 'allowlist')) {
      const prepared = egress.calls.indexOf(`prepare ${s.slotId}`);
      expect(prepared).toBeGreaterThanOrEqual(0);
      expect(egress.calls.indexOf(`create ${s.slotId} allowlist`)).toBeGreaterThan(prepared);
      expect(egress.dirs.has(s.slotId)).toBe(true);
    }
    const disabled = slots.find((s) => s.network === 'disabled')!;
    expect(egress.calls).not.toContain(`prepare ${disabled.slotId}`);
    expect(await pool.fillOnce()).toBe(0);
  });

  it('keeps no allowlist pool without a proxy to serve it', async () => {
    const { pool, store } = setup(
      { disabled: { '1g': 1 }, allowlist: { '1g': 1 } },
      { egress: undefined },
    );
    expect(pool.serves('1g', 'allowlist')).toBe(false);
    expect(pool.serves('1g', 'disabled')).toBe(true);
    await pool.fillOnce();
    expect((await store.list()).map((s) => s.network)).toEqual(['disabled']);
  });

  it('leaves no row, sandbox or directory when an allowlist sandbox fails to start', async () => {
    const { pool, store, egress, runtime } = setup({ allowlist: { '1g': 1 } });
    runtime.fail.create = true;
    await expect(pool.fillOnce()).rejects.toThrow('docker said no');
    expect(await store.list()).toEqual([]);
    expect(egress.dirs.size).toBe(0);
    expect(runtime.running.size).toBe(0);
  });

  it('claims an allowlist slot of its own egress scope, and counts hits and misses by network', async () => {
    const { pool, store, clock, events } = setup({ allowlist: { '1g': 1 } });
    await pool.fillOnce();
    const [slot] = await store.list();
    const claimed = await pool.claim(record(allowlist, clock), 10, clock.now());
    expect(claimed).toEqual({ outcome: 'claimed', slot });
    expect(store.claims).toEqual([SCOPE]);
    // A disabled create of the same limit has no pool here, and asks nothing.
    expect(await pool.claim(record({ type: 'disabled' }, clock), 10, clock.now())).toEqual({
      outcome: 'empty',
    });
    expect(await pool.claim(record(allowlist, clock), 10, clock.now())).toEqual({
      outcome: 'empty',
    });
    expect(store.claims).toEqual([SCOPE, SCOPE]);
    expect(events).toEqual(['claim 1g/allowlist', 'miss 1g/allowlist']);
  });

  it('never serves a create with domain secrets: its environment is fixed at docker create', async () => {
    const { pool, store, clock } = setup({ allowlist: { '1g': 1 } });
    await pool.fillOnce();
    const withSecrets: NetworkPolicy = {
      ...allowlist,
      domainSecrets: [{ domain: 'pypi.org', name: 'TOKEN', placeholder: 'p', sealed: 's' }],
    };
    expect(await pool.claim(record(withSecrets, clock), 10, clock.now())).toEqual({
      outcome: 'empty',
    });
    expect(store.claims).toEqual([]);
  });

  it('removes a dead allowlist slot’s sandbox, directory and claim, and reports a miss', async () => {
    const { pool, store, egress, runtime, containers, clock, events } = setup({
      allowlist: { '1g': 1 },
    });
    await pool.fillOnce();
    const [slot] = await store.list();
    runtime.running.delete(slot!.slotId);
    const r = record(allowlist, clock);
    expect(await pool.claim(r, 10, clock.now())).toEqual({ outcome: 'empty' });
    expect(egress.dirs.has(slot!.slotId)).toBe(false);
    expect(containers.row(r.id)).toBeUndefined();
    expect(events).toEqual(['miss 1g/allowlist']);
  });
});

describe('ContainersService with an allowlist pool', () => {
  function service(sizes: PoolSizes) {
    const s = setup(sizes);
    const runtime = { create: [] as string[] };
    const containers = new ContainersService({
      store: s.containers,
      runtime: {
        create: async (spec) => void runtime.create.push(spec.containerId),
        remove: async (id) => s.runtime.removePooled(id),
        inspect: async () => null,
        listManaged: async () => [],
        ping: async () => {},
      },
      clock: s.clock,
      maxLivePerProject: 10,
      egress: s.egress,
      pool: s.pool,
      secrets: { seal: (_id: string, v: string) => `sealed:${v}`, open: () => '' },
    });
    return { ...s, rows: s.containers, containers, cold: runtime.create };
  }
  const create = { name: 'box', expiresAfterMinutes: 20, memoryLimit: '1g' as const };

  it('serves an allowlist create from the pool: the proxy attaches in the slot’s directory', async () => {
    const { containers, pool, store, egress, cold, runtime } = service({ allowlist: { '1g': 1 } });
    await pool.fillOnce();
    const [slot] = await store.list();
    const created = await containers.create('proj_a', { ...create, networkPolicy: allowlist });
    expect(created).toMatchObject({ status: 'running', poolSlot: slot!.slotId });
    expect(created.sandboxUid).toBe(slot!.sandboxUid);
    expect(cold).toEqual([]);
    expect(egress.calls).toContain(`attach ${created.id} in ${slot!.slotId}`);
    expect(egress.attached.get(created.id)).toEqual(['pypi.org']);

    await containers.delete('proj_a', created.id);
    expect(runtime.running.has(slot!.slotId)).toBe(false);
    expect(egress.attachedIds()).toEqual([]);
    expect(egress.dirs.size).toBe(0);
  });

  it('wakes the filler once a claimed create is answered, never during it; a miss wakes it at once', async () => {
    const { containers, pool, rows } = service({ disabled: { '1g': 1 } });
    await pool.fillOnce();
    const order: string[] = [];
    const kick = pool.kick.bind(pool);
    pool.kick = () => {
      order.push('kick');
      kick();
    };
    rows.hooks.markRunning = () => void order.push('running');
    const disabled = { ...create, networkPolicy: { type: 'disabled' as const } };

    const claimed = await containers.create('proj_a', disabled);
    expect(claimed.poolSlot).toBeDefined();
    expect(order).toEqual(['running', 'kick']);

    order.length = 0;
    const cold = await containers.create('proj_a', disabled);
    expect(cold.poolSlot).toBeUndefined();
    expect(order).toEqual(['kick', 'running']);
  });

  it('creates cold when the allowlist pool is empty, or the create has domain secrets', async () => {
    const { containers, pool, cold, store } = service({ allowlist: { '1g': 1 } });
    const empty = await containers.create('proj_a', { ...create, networkPolicy: allowlist });
    expect(empty.poolSlot).toBeUndefined();
    expect(cold).toEqual([empty.id]);

    await pool.fillOnce();
    const secret = await containers.create('proj_a', {
      ...create,
      networkPolicy: allowlist,
      domainSecrets: [{ domain: 'pypi.org', name: 'TOKEN', value: 'v' }],
    });
    expect(secret.poolSlot).toBeUndefined();
    expect(cold).toEqual([empty.id, secret.id]);
    expect((await store.list()).map((s) => s.state)).toEqual(['idle']);
  });
});
