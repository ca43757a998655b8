import { describe, expect } from 'vitest';
import {
  InvalidRequestError,
  newId,
  type ContainerListFilter,
  type ContainerStatus,
} from '@berth/core';
import { test } from '@berth/testkit/fixtures';
import { PgApiKeyStore } from './api-key-store.js';
import { PgContainerStore } from './container-store.js';
import type { Pool } from './pool.js';

const T = 1_772_366_400; // 2026-03-01T12:00:00Z, unix seconds
const VISIBLE = new Set<ContainerStatus>(['running', 'expired', 'failed']);

interface Row {
  id: string;
  createdAt: number;
  name: string;
  status: ContainerStatus;
}

/** (created_at, id): the order every list is in, and the keyset's key. */
const compare = (a: Pick<Row, 'createdAt' | 'id'>, b: Pick<Row, 'createdAt' | 'id'>) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Thousands of rows in one statement; created_at comes from the id, as the store's rows do. */
async function insertRows(
  pool: Pool,
  projectId: string,
  count: number,
  shape: (i: number) => { second: number; name?: string; status?: ContainerStatus },
): Promise<Row[]> {
  const rows = Array.from({ length: count }, (_, i): Row => {
    const { second, name = `c${i % 10}`, status = 'running' } = shape(i);
    return { id: newId('container', second), createdAt: second, name, status };
  });
  await pool.query(
    `insert into containers (id, project_id, name, created_at, status, last_active_at,
                             expires_after_minutes, memory_limit, network_policy)
     select t.id, $1, t.name, t.created_at, t.status, now(), 20, '1g', '{"type": "disabled"}'
       from unnest($2::text[], $3::text[], $4::bigint[], $5::text[]) as t(id, name, created_at, status)`,
    [
      projectId,
      rows.map((r) => r.id),
      rows.map((r) => r.name),
      rows.map((r) => r.createdAt),
      rows.map((r) => r.status),
    ],
  );
  return rows;
}

const visibleSorted = (rows: Row[], order: 'asc' | 'desc', name?: string) => {
  const out = rows.filter((r) => VISIBLE.has(r.status) && (name === undefined || r.name === name));
  out.sort(compare);
  return order === 'asc' ? out : out.reverse();
};

/** Each test: its own database, the store on it, two projects, and `walk` over the store's pages. */
const it = test
  .extend('store', ({ database }) => new PgContainerStore(database.pool))
  .extend('projectA', ({ database }) => new PgApiKeyStore(database.pool).ensureProject('a'))
  .extend('projectB', ({ database }) => new PgApiKeyStore(database.pool).ensureProject('b'))
  /** Follows `after` from the first page to the one without more; checks each page's shape. */
  .extend(
    'walk',
    ({ store }) =>
      async (projectId: string, filter: Omit<ContainerListFilter, 'after'>) => {
        const ids: string[] = [];
        let after: string | undefined;
        for (let pages = 0; pages < 10_000; pages += 1) {
          const page = await store.list(projectId, { ...filter, after });
          ids.push(...page.items.map((c) => c.id));
          if (!page.hasMore) return ids;
          expect(page.items).toHaveLength(filter.limit);
          after = page.items.at(-1)!.id;
        }
        throw new Error('pagination did not end');
      },
  );

describe('list: keyset pages', () => {
  it('lists rows made one after another in the same second in exactly that order', async ({
    database: db,
    store,
    projectA,
    walk,
  }) => {
    // 200 creates within one second, minted and inserted in this order, as the service does.
    const rows = await insertRows(db.pool, projectA, 200, () => ({ second: T }));
    const made = rows.map((r) => r.id);

    expect(
      (await store.list(projectA, { limit: 100, order: 'asc' })).items.map((c) => c.id),
    ).toEqual(made.slice(0, 100));
    expect(await walk(projectA, { limit: 7, order: 'asc' })).toEqual(made);
    expect(await walk(projectA, { limit: 7, order: 'desc' })).toEqual([...made].reverse());
    // A deleted after-row still positions exactly: the id alone is the cursor.
    await store.remove(made[50]!);
    const next = await store.list(projectA, { limit: 3, order: 'asc', after: made[50] });
    expect(next.items.map((c) => c.id)).toEqual(made.slice(51, 54));
  });

  it('walks thousands of rows tied on created_at, in both orders, each visible row once', async ({
    database: db,
    projectA,
    walk,
  }) => {
    // 3,000 visible rows over three seconds (1,000 per second) and 600 hidden ones among them.
    const rows = await insertRows(db.pool, projectA, 3_600, (i) => ({
      second: T + (i % 3),
      status:
        i < 3_000
          ? (['running', 'expired', 'failed'] as const)[i % 3]
          : i % 2
            ? 'creating'
            : 'deleting',
    }));

    for (const order of ['asc', 'desc'] as const) {
      const expected = visibleSorted(rows, order).map((r) => r.id);
      expect(expected).toHaveLength(3_000);
      expect(await walk(projectA, { limit: 7, order })).toEqual(expected);
      expect(await walk(projectA, { limit: 100, order })).toEqual(expected);
    }
  });

  it('says has_more exactly: no empty last page, none missing', async ({
    database: db,
    store,
    projectA,
    projectB,
  }) => {
    const rows = await insertRows(db.pool, projectA, 1_000, (i) => ({ second: T + (i % 4) }));
    const expected = visibleSorted(rows, 'desc').map((r) => r.id);

    const whole = await store.list(projectA, { limit: 1_000, order: 'desc' });
    expect(whole.hasMore).toBe(false);
    expect(whole.items.map((c) => c.id)).toEqual(expected);

    const allButOne = await store.list(projectA, { limit: 999, order: 'desc' });
    expect(allButOne.hasMore).toBe(true);
    const last = await store.list(projectA, {
      limit: 999,
      order: 'desc',
      after: allButOne.items.at(-1)!.id,
    });
    expect(last).toMatchObject({ hasMore: false });
    expect(last.items.map((c) => c.id)).toEqual([expected.at(-1)]);

    // 1,000 = 10 × 100: the tenth page is full and is the last.
    let after: string | undefined;
    for (let page = 1; page <= 10; page += 1) {
      const p = await store.list(projectA, { limit: 100, order: 'desc', after });
      expect(p.items).toHaveLength(100);
      expect(p.hasMore).toBe(page < 10);
      after = p.items.at(-1)!.id;
    }

    const empty = await store.list(projectB, { limit: 20, order: 'asc' });
    expect(empty).toEqual({ items: [], hasMore: false });
  });

  it('keeps its place when rows are deleted between pages, the after row included', async ({
    database: db,
    store,
    projectA,
  }) => {
    for (const order of ['asc', 'desc'] as const) {
      const rows = await insertRows(db.pool, projectA, 2_000, (i) => ({ second: T + (i % 5) }));
      const expected = visibleSorted(rows, order);
      const seen: string[] = [];
      const deletedAhead = new Set<string>();
      let after: string | undefined;
      for (let round = 0; ; round += 1) {
        const page = await store.list(projectA, { limit: 50, order, after });
        seen.push(...page.items.map((c) => c.id));
        if (!page.hasMore) break;
        after = page.items.at(-1)!.id;
        const cursor = expected.findIndex((r) => r.id === after);
        // Every third page: delete the row the cursor is on, for good.
        if (round % 3 === 0) await store.remove(after);
        // Always: hide a few rows not reached yet, and one already seen.
        for (const offset of [1, 17, 60]) {
          const ahead = expected[cursor + offset];
          if (ahead && !deletedAhead.has(ahead.id)) {
            deletedAhead.add(ahead.id);
            if (offset === 17) await store.remove(ahead.id);
            else expect(await store.markDeleting(projectA, ahead.id)).not.toBeNull();
          }
        }
        if (seen.length > 10) await store.markDeleting(projectA, seen[seen.length - 10]!);
      }
      expect(seen).toEqual(expected.filter((r) => !deletedAhead.has(r.id)).map((r) => r.id));
      await db.pool.query('delete from containers');
    }
  });

  it('starts right after a deleted after-row', async ({ database: db, store, projectA }) => {
    const rows = await insertRows(db.pool, projectA, 300, (i) => ({ second: T + (i % 2) }));
    for (const order of ['asc', 'desc'] as const) {
      const expected = visibleSorted(rows, order).map((r) => r.id);
      const first = await store.list(projectA, { limit: 10, order });
      const cursor = first.items.at(-1)!.id;
      await db.pool.query('delete from containers where id = $1', [cursor]);

      const next = await store.list(projectA, { limit: 10, order, after: cursor });

      expect(next.items.map((c) => c.id)).toEqual(expected.slice(10, 20));
      rows.splice(
        rows.findIndex((r) => r.id === cursor),
        1,
      );
    }
  });

  it('positions an unknown but well-formed after by the time and id it encodes', async ({
    database: db,
    store,
    projectA,
  }) => {
    const rows = await insertRows(db.pool, projectA, 1_500, (i) => ({ second: T + (i % 3) }));
    for (const order of ['asc', 'desc'] as const) {
      const expected = visibleSorted(rows, order);
      // A tie with 500 rows: the random id falls somewhere among them.
      const after = newId('container', T + 1);
      const key = { createdAt: T + 1, id: after };
      const rest = expected.filter((r) =>
        order === 'asc' ? compare(r, key) > 0 : compare(r, key) < 0,
      );
      expect(rest.length).toBeGreaterThan(0);

      const page = await store.list(projectA, { limit: 25, order, after });

      expect(page.items.map((c) => c.id)).toEqual(rest.slice(0, 25).map((r) => r.id));
      expect(page.hasMore).toBe(true);
    }

    const beforeAll = newId('container', T - 100);
    const afterAll = newId('container', T + 100);
    expect(await store.list(projectA, { limit: 5, order: 'asc', after: afterAll })).toEqual({
      items: [],
      hasMore: false,
    });
    expect(await store.list(projectA, { limit: 5, order: 'desc', after: beforeAll })).toEqual({
      items: [],
      hasMore: false,
    });
    const fromTop = await store.list(projectA, { limit: 5, order: 'desc', after: afterAll });
    expect(fromTop.items.map((c) => c.id)).toEqual(
      visibleSorted(rows, 'desc')
        .slice(0, 5)
        .map((r) => r.id),
    );
  });

  it('rejects an after that is not a container id, as a 400 on `after`', async ({
    store,
    projectA,
  }) => {
    for (const after of ['cntr_nothex', newId('file', T), `${newId('container', T)}0`, '']) {
      const error = await store.list(projectA, { limit: 5, order: 'asc', after }).catch((e) => e);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect(error).toMatchObject({ status: 400, param: 'after' });
    }
  });

  it('filters by name, paging within the name', async ({ database: db, store, projectA, walk }) => {
    const rows = await insertRows(db.pool, projectA, 2_400, (i) => ({
      second: T + (i % 2),
      name: ['alpha', 'beta', 'gamma'][i % 3]!,
      status: i % 7 === 0 ? 'deleting' : 'running',
    }));
    for (const order of ['asc', 'desc'] as const) {
      const expected = visibleSorted(rows, order, 'beta').map((r) => r.id);
      expect(expected.length).toBeGreaterThan(600);
      expect(await walk(projectA, { limit: 64, order, name: 'beta' })).toEqual(expected);
    }
    expect(await store.list(projectA, { limit: 5, order: 'asc', name: 'delta' })).toEqual({
      items: [],
      hasMore: false,
    });
  });

  it("never shows one project's rows to another", async ({
    database: db,
    store,
    projectA,
    projectB,
    walk,
  }) => {
    const a = await insertRows(db.pool, projectA, 1_000, (i) => ({
      second: T + (i % 2),
      name: 'same',
    }));
    const b = await insertRows(db.pool, projectB, 1_000, (i) => ({
      second: T + (i % 2),
      name: 'same',
    }));

    expect(await walk(projectA, { limit: 90, order: 'asc' })).toEqual(
      visibleSorted(a, 'asc').map((r) => r.id),
    );
    expect(await walk(projectB, { limit: 90, order: 'desc', name: 'same' })).toEqual(
      visibleSorted(b, 'desc').map((r) => r.id),
    );
    // A cursor from the other project positions, but shows nothing of it.
    const mixed = await store.list(projectA, { limit: 1_000, order: 'asc', after: b[0]!.id });
    expect(mixed.items.every((c) => c.projectId === projectA)).toBe(true);
  });
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Actual Rows'?: number;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

function render(n: PlanNode, depth = 0): string {
  const what = [n['Node Type'], n['Scan Direction'], n['Index Name'] && `using ${n['Index Name']}`]
    .filter(Boolean)
    .join(' ');
  const pad = '  '.repeat(depth);
  return [
    `${pad}${what} (actual rows=${n['Actual Rows']})`,
    ...(n['Index Cond'] ? [`${pad}  Index Cond: ${n['Index Cond']}`] : []),
    ...(n.Plans ?? []).map((c) => render(c, depth + 1)),
  ].join('\n');
}

describe('list: query plans', () => {
  it('reads a page straight off the keyset index among 50,000 rows', async ({
    database: db,
    projectA,
    projectB,
  }) => {
    const rows = await insertRows(db.pool, projectA, 50_000, (i) => ({
      second: T + Math.floor(i / 20),
      // 4,500 visible rows per name: a page must come off the index, not from sorting them.
      name: `name-${i % 10}`,
      status: i % 10 === 0 ? 'deleting' : i % 10 === 1 ? 'expired' : 'running',
    }));
    await insertRows(db.pool, projectB, 10_000, (i) => ({ second: T + (i % 2_500) }));
    await db.pool.query('analyze containers');

    // The store's own SQL and parameters, captured on their way to the pool.
    const queries: { text: string; values: unknown[] }[] = [];
    const spy = new Proxy(db.pool, {
      get(target, key) {
        if (key === 'query') {
          return (text: string, values: unknown[]) => {
            queries.push({ text, values });
            return target.query(text, values);
          };
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const spied = new PgContainerStore(spy);
    const middle = visibleSorted(rows, 'asc')[20_000]!.id;
    const cases: [string, ContainerListFilter, string][] = [
      ['first page, desc', { limit: 20, order: 'desc' }, 'containers_page'],
      ['first page, asc', { limit: 20, order: 'asc' }, 'containers_page'],
      ['after, desc', { limit: 100, order: 'desc', after: middle }, 'containers_page'],
      ['after, asc', { limit: 100, order: 'asc', after: middle }, 'containers_page'],
      ['name, desc', { limit: 20, order: 'desc', name: 'name-7' }, 'containers_name_page'],
      [
        'name + after, asc',
        { limit: 20, order: 'asc', name: 'name-7', after: middle },
        'containers_name_page',
      ],
    ];

    for (const [label, filter, index] of cases) {
      queries.length = 0;
      await spied.list(projectA, filter);
      const [{ text, values }] = queries as [{ text: string; values: unknown[] }];
      const { rows: explained } = await db.pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `explain (analyze, format json) ${text}`,
        values,
      );
      const plan = explained[0]!['QUERY PLAN'][0].Plan;
      console.log(`EXPLAIN ${label}:\n${render(plan)}`);

      const all = nodes(plan);
      expect(plan['Node Type'], label).toBe('Limit');
      const scans = all.filter((n) => /Scan/.test(n['Node Type']));
      expect(scans, label).toHaveLength(1);
      expect(scans[0], label).toMatchObject({ 'Node Type': 'Index Scan', 'Index Name': index });
      expect(scans[0]!['Scan Direction'], label).toBe(
        filter.order === 'asc' ? 'Forward' : 'Backward',
      );
      expect(
        all.some((n) => n['Node Type'] === 'Sort'),
        label,
      ).toBe(false);
      // Only the page (and the one row that tells has_more) is read, not the project's rows.
      expect(scans[0]!['Actual Rows'], label).toBeLessThanOrEqual(filter.limit + 1);
    }
  });
});
