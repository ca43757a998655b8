import { describe, expect } from 'vitest';
import type { ContainerRecord } from '@berth/core';
import { aContainer } from '@berth/testkit';
import { test } from '@berth/testkit/fixtures';
import { PgAdminStore } from './admin-store.js';
import { PgApiKeyStore } from './api-key-store.js';
import { PgContainerStore } from './container-store.js';
import { PgPoolStore } from './pool-store.js';

const T0 = new Date('2026-03-01T12:00:00Z');
const GIB = 1024 ** 3;

const it = test
  .extend('admin', ({ database }) => new PgAdminStore(database.pool))
  .extend('containers', ({ database }) => new PgContainerStore(database.pool))
  .extend('slots', ({ database }) => new PgPoolStore(database.pool))
  .extend('project', ({ database }) => new PgApiKeyStore(database.pool).ensureProject('p'));

describe('PgAdminStore.summary', () => {
  it("counts the warm pool's sandboxes in the committed memory, and says how much is the pool's", async ({
    admin,
    containers,
    slots,
    project,
  }) => {
    const running = async (memoryLimit: ContainerRecord['memoryLimit']) => {
      const r = aContainer({
        projectId: project,
        status: 'creating',
        memoryLimit,
        lastActiveAt: T0,
        createdAt: Math.floor(T0.getTime() / 1000),
      });
      expect(await containers.insertCreating(r, 100, T0)).toBe('inserted');
      await containers.markRunning(r.id);
    };
    await running('4g');
    await running('1g');
    let uid = 200_000_000;
    const slot = async (
      memoryLimit: ContainerRecord['memoryLimit'],
      idle: boolean,
      network: 'disabled' | 'allowlist' = 'disabled',
    ) => {
      const slotId = `pool_${uid}`;
      const egressScope = network === 'allowlist' ? '/run/berth/egress' : null;
      const reserved = await slots.reserve(
        {
          slotId,
          memoryLimit,
          network,
          egressScope,
          sandboxUid: uid++,
          state: 'filling',
          updatedAt: T0,
        },
        10,
      );
      expect(reserved).toBe('reserved');
      if (idle) await slots.markIdle(slotId);
    };
    await slot('1g', true);
    await slot('1g', true);
    // An allowlist slot holds its limit as a disabled one does.
    await slot('4g', false, 'allowlist');

    const s = await admin.summary(T0);

    expect(s.poolCommittedBytes).toBe(6 * GIB);
    expect(s.memoryCommittedBytes).toBe((5 + 6) * GIB);
    expect(s.pool).toEqual([
      { memoryLimit: '1g', state: 'idle', count: 2 },
      { memoryLimit: '4g', state: 'filling', count: 1 },
    ]);
    expect(s.byProject).toEqual([
      { projectId: project, projectName: 'p', running: 2, memoryBytes: 5 * GIB },
    ]);
  });

  it('commits nothing on an empty host', async ({ admin }) => {
    const s = await admin.summary(T0);
    expect(s).toMatchObject({ memoryCommittedBytes: 0, poolCommittedBytes: 0, pool: [] });
  });
});
