import type { ContainerStore } from '../ports/container-store.js';
import type { EgressController } from '../ports/egress-controller.js';
import { runningContainers } from './reconciler.js';

export interface EgressSyncReport {
  attached: number;
  detached: number;
}

/**
 * Serves exactly the running allowlist containers: after a restart (sandboxes that ran before it
 * regain egress, and only they), and as sandboxes come and go behind this process's back.
 */
export class EgressSync {
  constructor(
    private readonly options: {
      store: Pick<ContainerStore, 'listRunning' | 'liveIds'>;
      egress: EgressController;
    },
  ) {}

  async run(): Promise<EgressSyncReport> {
    const { store, egress } = this.options;
    const report: EgressSyncReport = { attached: 0, detached: 0 };
    const live = new Set<string>();
    for await (const row of runningContainers(store)) {
      if (row.networkPolicy.type !== 'allowlist') continue;
      live.add(row.id);
      await egress.attach(row.id, row.networkPolicy);
      report.attached += 1;
    }
    // Running rows only: creates in flight attach before their row is running, so keep young ones.
    for (const id of egress.attachedIds()) {
      if (live.has(id) || (await store.liveIds([id])).has(id)) continue;
      await egress.detach(id);
      report.detached += 1;
    }
    return report;
  }
}
