import { describe, expect, it } from 'vitest';
import { aContainer, FakeContainerStore, FakeEgressController } from '@berth/testkit/fakes';
import { EgressSync } from './egress-sync.js';

const allowlist = { type: 'allowlist' as const, allowedDomains: ['example.com'] };

describe('EgressSync', () => {
  it('serves exactly the running allowlist containers, and keeps a create in flight', async () => {
    const store = new FakeContainerStore();
    const egress = new FakeEgressController();
    const running = aContainer({ status: 'running', networkPolicy: allowlist });
    const disabled = aContainer({ status: 'running' });
    const creating = aContainer({ status: 'creating', networkPolicy: allowlist });
    const gone = aContainer({ status: 'expired', networkPolicy: allowlist });
    for (const r of [running, disabled, creating, gone]) store.seed(r);
    await egress.attach(creating.id, allowlist);
    await egress.attach(gone.id, allowlist);

    const report = await new EgressSync({ store, egress }).run();

    expect(report).toEqual({ attached: 1, detached: 1, dirsRemoved: 0 });
    expect(egress.attachedIds().sort()).toEqual([running.id, creating.id].sort());
  });

  it('reattaches a claimed container in its slot’s directory, and sweeps directories no row owns', async () => {
    const store = new FakeContainerStore();
    const egress = new FakeEgressController();
    const claimed = aContainer({ status: 'running', networkPolicy: allowlist, poolSlot: 'pool_a' });
    const cold = aContainer({ status: 'running', networkPolicy: allowlist });
    const creating = aContainer({ status: 'creating', networkPolicy: allowlist });
    const deleted = aContainer({ status: 'expired', networkPolicy: allowlist });
    for (const r of [claimed, cold, creating, deleted]) store.seed(r);
    // Left by a crash: a deleted container's directory, a removed slot's; and an idle slot's.
    for (const key of [creating.id, deleted.id, 'pool_gone', 'pool_idle'])
      await egress.prepareDir(key);
    const pool = {
      liveSlots: async (ids: string[]) => new Set(ids.filter((i) => i === 'pool_idle')),
    };

    const report = await new EgressSync({ store, egress, pool }).run();

    expect(report).toEqual({ attached: 2, detached: 0, dirsRemoved: 2 });
    expect(egress.calls).toContain(`attach ${claimed.id} in pool_a`);
    expect([...egress.dirs].sort()).toEqual(
      [claimed.poolSlot, cold.id, creating.id, 'pool_idle'].sort(),
    );
  });
});
