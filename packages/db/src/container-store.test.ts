import { describe, expect } from 'vitest';
import {
  BerthError,
  newId,
  UnavailableError,
  type ContainerRecord,
  type ContainerStatus,
} from '@berth/core';
import { aContainer } from '@berth/testkit';
import { test } from '@berth/testkit/fixtures';
import { PgApiKeyStore } from './api-key-store.js';
import { PgContainerStore } from './container-store.js';
import { createPool } from './pool.js';

const T0 = new Date('2026-03-01T12:00:00Z');
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const minutes = (n: number) => n * 60_000;

/** A `creating` row of `projectId` created and last active at T0, with a uid of its own. */
const record = (projectId: string, overrides: Partial<ContainerRecord> = {}): ContainerRecord =>
  aContainer({
    projectId,
    status: 'creating',
    lastActiveAt: T0,
    createdAt: seconds(T0),
    ...overrides,
  });

/** Each test: its own database, the store on it, two projects, and `put` to arrange rows. */
const it = test
  .extend('store', ({ database }) => new PgContainerStore(database.pool))
  .extend('projectA', ({ database }) => new PgApiKeyStore(database.pool).ensureProject('a'))
  .extend('projectB', ({ database }) => new PgApiKeyStore(database.pool).ensureProject('b'))
  /** Inserts a row in the given status, bypassing the cap, as later transitions would leave it. */
  .extend(
    'put',
    ({ store }) =>
      async (r: ContainerRecord, status: ContainerStatus = r.status): Promise<ContainerRecord> => {
        expect(
          await store.insertCreating({ ...r, status: 'creating' }, Number.MAX_SAFE_INTEGER, T0),
        ).toBe('inserted');
        if (status !== 'creating') await store.setStatus(r.id, status, r.statusReason);
        return { ...r, status };
      },
  );

describe('insertCreating and the live cap', () => {
  it('inserts up to the cap, then answers over_cap without inserting', async ({
    database: db,
    store,
    projectA,
  }) => {
    for (let i = 0; i < 3; i += 1) {
      expect(await store.insertCreating(record(projectA), 3, T0)).toBe('inserted');
    }
    const extra = record(projectA);
    expect(await store.insertCreating(extra, 3, T0)).toBe('over_cap');
    expect(await db.pool.query('select 1 from containers where id = $1', [extra.id])).toMatchObject(
      { rowCount: 0 },
    );
  });

  it('counts creating and running rows whose deadline has not passed, in this project only', async ({
    store,
    projectA,
    projectB,
    put,
  }) => {
    await put(record(projectA), 'creating');
    await put(record(projectA), 'running');
    // Not live: past its deadline at T0, or in a status that holds no slot.
    await put(record(projectA, { lastActiveAt: new Date(T0.getTime() - minutes(21)) }), 'running');
    await put(record(projectA), 'expired');
    await put(record(projectA, { statusReason: 'sandbox vanished' }), 'failed');
    await put(record(projectA), 'deleting');
    await put(record(projectB), 'running');
    await put(record(projectB), 'running');

    expect(await store.insertCreating(record(projectA), 3, T0)).toBe('inserted');
    expect(await store.insertCreating(record(projectA), 3, T0)).toBe('over_cap');
  });

  it('judges deadlines against the `now` it is given', async ({ store, projectA, put }) => {
    await put(record(projectA), 'running'); // deadline T0 + 20 min
    const at = (ms: number) => new Date(T0.getTime() + ms);

    expect(await store.insertCreating(record(projectA), 1, at(minutes(20) - 1000))).toBe(
      'over_cap',
    );
    expect(await store.insertCreating(record(projectA), 1, at(minutes(20)))).toBe('inserted');
  });

  it('lets exactly the cap through when many creates race', async ({ database: db, projectA }) => {
    const pool = createPool(db.url, { max: 40 });
    try {
      const racing = new PgContainerStore(pool);
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, () => racing.insertCreating(record(projectA), 5, T0)),
      );
      expect(outcomes.filter((o) => o === 'inserted')).toHaveLength(5);
      expect(outcomes.filter((o) => o === 'over_cap')).toHaveLength(35);
    } finally {
      await pool.end();
    }
    const { rows } = await db.pool.query('select count(*)::int as n from containers');
    expect(rows[0]).toEqual({ n: 5 });
  });

  it('gives the last free slot to exactly one of the creates racing for it', async ({
    database: db,
    projectA,
    put,
  }) => {
    for (let i = 0; i < 9; i += 1) await put(record(projectA), 'running');
    const pool = createPool(db.url, { max: 30 });
    try {
      const racing = new PgContainerStore(pool);
      for (let round = 0; round < 5; round += 1) {
        const winners = (
          await Promise.all(
            Array.from({ length: 30 }, () => racing.insertCreating(record(projectA), 10, T0)),
          )
        ).filter((o) => o === 'inserted');
        // First round: the one slot; later rounds: none left.
        expect(winners).toHaveLength(round === 0 ? 1 : 0);
      }
    } finally {
      await pool.end();
    }
  });

  it('turns a duplicate id into a conflict error, keeping the pg error as cause', async ({
    store,
    projectA,
  }) => {
    const r = record(projectA);
    await store.insertCreating(r, 10, T0);

    const error = await store.insertCreating(r, 10, T0).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BerthError);
    expect(error).toMatchObject({ status: 409, type: 'invalid_request_error' });
    expect((error as Error).cause).toMatchObject({ code: '23505' });
  });

  it('answers uid_taken for a sandbox uid a live row holds; an expired row frees it', async ({
    store,
    projectA,
    projectB,
  }) => {
    const first = record(projectA);
    expect(await store.insertCreating(first, 10, T0)).toBe('inserted');
    const same = () => record(projectB, { sandboxUid: first.sandboxUid });
    expect(await store.insertCreating(same(), 10, T0)).toBe('uid_taken');
    await store.setStatus(first.id, 'failed', 'sandbox vanished');
    expect(await store.insertCreating(same(), 10, T0)).toBe('uid_taken');
    await store.setStatus(first.id, 'expired');
    expect(await store.insertCreating(same(), 10, T0)).toBe('inserted');
  });
});

describe('rows read back', () => {
  it('round-trips every field, network policy stored in snake_case', async ({
    database: db,
    store,
    projectA,
    put,
  }) => {
    const r = record(projectA, {
      name: 'with-policy',
      memoryLimit: '16g',
      expiresAfterMinutes: 7,
      networkPolicy: {
        type: 'allowlist',
        allowedDomains: ['pypi.org', '*.example.com'],
        domainSecrets: [
          {
            domain: 'api.example.com',
            name: 'TOKEN',
            placeholder: 'berth_secret_ab',
            sealed: 'v1.x.y.z',
          },
        ],
      },
    });
    await put(r, 'running');

    expect(await store.get(projectA, r.id)).toEqual({ ...r, status: 'running' });
    const { rows } = await db.pool.query('select network_policy from containers where id = $1', [
      r.id,
    ]);
    expect(rows[0].network_policy).toEqual({
      type: 'allowlist',
      allowed_domains: ['pypi.org', '*.example.com'],
      domain_secrets: [
        {
          domain: 'api.example.com',
          name: 'TOKEN',
          placeholder: 'berth_secret_ab',
          sealed: 'v1.x.y.z',
        },
      ],
    });
  });

  it('shows only visible rows, only to their own project', async ({
    store,
    projectA,
    projectB,
    put,
  }) => {
    const running = await put(record(projectA), 'running');
    const expired = await put(record(projectA), 'expired');
    const failed = await put(record(projectA, { statusReason: 'oom' }), 'failed');
    const creating = await put(record(projectA), 'creating');
    const deleting = await put(record(projectA), 'deleting');

    expect(await store.get(projectA, running.id)).toEqual(running);
    expect(await store.get(projectA, expired.id)).toEqual(expired);
    expect(await store.get(projectA, failed.id)).toEqual(failed);
    expect(await store.get(projectA, creating.id)).toBeNull();
    expect(await store.get(projectA, deleting.id)).toBeNull();
    expect(await store.get(projectB, running.id)).toBeNull();
    expect(await store.get(projectA, newId('container', seconds(T0)))).toBeNull();
  });
});

describe('state changes', () => {
  it('markRunning moves creating rows only', async ({ store, projectA, put }) => {
    const creating = await put(record(projectA), 'creating');
    const expired = await put(record(projectA), 'expired');

    await store.markRunning(creating.id);
    await store.markRunning(expired.id);

    expect((await store.get(projectA, creating.id))?.status).toBe('running');
    expect((await store.get(projectA, expired.id))?.status).toBe('expired');
  });

  it('markDeleting hides a visible row once and returns it as it was', async ({
    store,
    projectA,
    projectB,
    put,
  }) => {
    const failed = await put(record(projectA, { statusReason: 'sandbox vanished' }), 'failed');

    expect(await store.markDeleting(projectB, failed.id)).toBeNull();
    expect(await store.markDeleting(projectA, failed.id)).toEqual(failed);
    expect(await store.markDeleting(projectA, failed.id)).toBeNull();
    expect(await store.get(projectA, failed.id)).toBeNull();
    expect((await store.listAbandoned(T0)).map((r) => r.id)).toEqual([failed.id]);

    await store.remove(failed.id);
    expect(await store.listAbandoned(T0)).toEqual([]);
  });

  it('only one of many concurrent deletes gets the row', async ({ store, projectA, put }) => {
    const running = await put(record(projectA), 'running');
    const results = await Promise.all(
      Array.from({ length: 5 }, () => store.markDeleting(projectA, running.id)),
    );
    expect(results.filter((r) => r !== null)).toEqual([running]);
  });

  it('touch moves last_active_at forward on running rows only', async ({
    store,
    projectA,
    put,
  }) => {
    const running = await put(record(projectA), 'running');
    const expired = await put(record(projectA), 'expired');
    const later = new Date(T0.getTime() + minutes(5));

    expect(await store.touch(running.id, later)).toBe(true);
    expect(await store.touch(running.id, T0)).toBe(true); // never moves back
    expect(await store.touch(expired.id, later)).toBe(false);
    expect(await store.touch(newId('container', seconds(T0)), later)).toBe(false);

    expect((await store.get(projectA, running.id))?.lastActiveAt).toEqual(later);
    expect((await store.get(projectA, expired.id))?.lastActiveAt).toEqual(T0);
  });

  it('setStatus records and clears the reason', async ({ store, projectA, put }) => {
    const r = await put(record(projectA), 'running');
    await store.setStatus(r.id, 'failed', 'sandbox stopped (exit code 137)');
    expect(await store.get(projectA, r.id)).toMatchObject({
      status: 'failed',
      statusReason: 'sandbox stopped (exit code 137)',
    });
    await store.setStatus(r.id, 'expired');
    expect(await store.get(projectA, r.id)).toMatchObject({
      status: 'expired',
      statusReason: null,
    });
  });
});

describe('reconciliation queries', () => {
  it('listAbandoned: creating rows last updated before the cutoff, and every deleting row', async ({
    database: db,
    store,
    projectA,
    projectB,
    put,
  }) => {
    const oldCreating = await put(record(projectA), 'creating');
    const deleting = await put(record(projectB), 'deleting');
    await put(record(projectA), 'running');
    await put(record(projectA), 'expired');
    await db.pool.query(`update containers set updated_at = now() - interval '1 hour'`);
    const freshCreating = await put(record(projectA), 'creating');
    const freshDeleting = await put(record(projectA), 'deleting');

    const cutoff = new Date(Date.now() - minutes(10));
    const ids = (await store.listAbandoned(cutoff)).map((r) => r.id).sort();

    expect(ids).toEqual([oldCreating.id, deleting.id, freshDeleting.id].sort());
    expect(ids).not.toContain(freshCreating.id);
  });

  it('liveIds: the given ids that have a creating, running or deleting row', async ({
    store,
    projectA,
    projectB,
    put,
  }) => {
    const live = [
      await put(record(projectA), 'creating'),
      await put(record(projectA), 'running'),
      await put(record(projectB), 'deleting'),
    ].map((r) => r.id);
    const dead = [
      (await put(record(projectA), 'expired')).id,
      (await put(record(projectA), 'failed')).id,
      newId('container', seconds(T0)),
    ];

    expect(await store.liveIds([...live, ...dead])).toEqual(new Set(live));
    expect(await store.liveIds([])).toEqual(new Set());
  });

  it('listRunning pages running rows of every project by id', async ({
    store,
    projectA,
    projectB,
    put,
  }) => {
    const running: string[] = [];
    for (let i = 0; i < 25; i += 1) {
      running.push((await put(record(i % 2 ? projectA : projectB), 'running')).id);
      await put(record(projectA), i % 3 ? 'expired' : 'creating');
    }
    running.sort();

    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.listRunning(10, after);
      if (page.length === 0) break;
      expect(page.every((r) => r.status === 'running')).toBe(true);
      seen.push(...page.map((r) => r.id));
      after = page.at(-1)!.id;
    }
    expect(seen).toEqual(running);
  });
});

describe('when Postgres is unreachable', () => {
  it('every method fails with UnavailableError, keeping the cause', async ({ projectA }) => {
    const pool = createPool('postgres://berth:berth@127.0.0.1:1/nowhere', { max: 1 });
    const down = new PgContainerStore(pool);
    try {
      const calls: (() => Promise<unknown>)[] = [
        () => down.insertCreating(record(projectA), 1, T0),
        () => down.get(projectA, newId('container', 1)),
        () => down.list(projectA, { limit: 10, order: 'desc' }),
        () => down.markDeleting(projectA, newId('container', 1)),
        () => down.touch(newId('container', 1), T0),
        () => down.listAbandoned(T0),
        () => down.liveIds([]),
        () => down.listRunning(10),
      ];
      for (const call of calls) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnavailableError);
        expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
      }
    } finally {
      await pool.end();
    }
  });
});
