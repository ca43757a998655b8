import { sandboxKey } from '../container.js';
import type { ContainerStore } from '../ports/container-store.js';
import type { EgressController } from '../ports/egress-controller.js';
import type { PoolStore } from '../ports/sandbox-pool.js';
import { runningContainers } from './reconciler.js';

export interface EgressSyncReport {
  attached: number;
  detached: number;
  /** Egress directories that belonged to no row (a crash between steps), removed. */
  dirsRemoved: number;
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
      /** The warm pool's rows: an allowlist slot's directory belongs to its slot row. */
      pool?: Pick<PoolStore, 'liveSlots'>;
    },
  ) {}

  async run(): Promise<EgressSyncReport> {
    const { store, egress } = this.options;
    const report: EgressSyncReport = { attached: 0, detached: 0, dirsRemoved: 0 };
    const live = new Set<string>();
    const liveDirs = new Set<string>();
    for await (const row of runningContainers(store)) {
      if (row.networkPolicy.type !== 'allowlist') continue;
      live.add(row.id);
      liveDirs.add(sandboxKey(row));
      await egress.attach(row.id, row.networkPolicy, sandboxKey(row));
      report.attached += 1;
    }
    // Running rows only: creates in flight attach before their row is running, so keep young ones.
    for (const id of egress.attachedIds()) {
      if (live.has(id) || (await store.liveIds([id])).has(id)) continue;
      await egress.detach(id);
      report.detached += 1;
    }
    // Rows are written before directories are made, so a directory listed here whose name is no
    // live container's and no slot's (idle, or claimed by a live container) is an orphan.
    const keys = (await egress.dirKeys()).filter((k) => !liveDirs.has(k));
    if (keys.length > 0) {
      const owned = new Set([
        ...(await store.liveIds(keys)),
        ...((await this.options.pool?.liveSlots(keys)) ?? []),
      ]);
      for (const key of keys) {
        if (owned.has(key)) continue;
        await egress.detach(key);
        report.dirsRemoved += 1;
      }
    }
    return report;
  }
}
