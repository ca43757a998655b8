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

    expect(report).toEqual({ attached: 1, detached: 1 });
    expect(egress.attachedIds().sort()).toEqual([running.id, creating.id].sort());
  });
});
