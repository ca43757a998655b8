import { BadRequestError } from 'openai';
import { describe, expect } from 'vitest';
import { berthTest, errorOf } from './fixtures.js';

type Made = { id: string; name: string; created_at: number };

/** The order the API promises: created_at, then id. */
const expected = (order: 'asc' | 'desc', items: Made[]) => {
  const sorted = [...items].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
  return (order === 'asc' ? sorted : sorted.reverse()).map((c) => c.id);
};

const it = berthTest({ BERTH_MAX_CONTAINERS_PER_PROJECT: '60' })
  // 45 real sandboxes, a few at a time; names alternate so the filter has something to do. A
  // test that deletes one takes it out of the list.
  .extend('created', { scope: 'file' }, async ({ berth }) => {
    const created: Made[] = [];
    for (let i = 0; i < 45; i += 5) {
      const batch = await Promise.all(
        Array.from({ length: 5 }, (_, j) =>
          berth.client.containers.create({ name: (i + j) % 3 === 0 ? 'fizz' : `box-${i + j}` }),
        ),
      );
      created.push(...batch);
    }
    return created;
  });
it.beforeAll(async ({ created: _ }) => {}, 240_000);

describe('GET /v1/containers', () => {
  it.for(['asc', 'desc'] as const)(
    'auto-paginates 45 containers with limit 10 in %s order',
    async (order, { berth, created }) => {
      const seen: string[] = [];
      let pages = 0;
      const first = await berth.client.containers.list({ limit: 10, order });
      for await (const page of first.iterPages()) {
        pages += 1;
        seen.push(...page.data.map((c) => c.id));
      }
      expect(seen).toEqual(expected(order, created));
      expect(pages).toBe(5);
    },
  );

  it('gives exact first_id, last_id and has_more on the wire', async ({ berth, created }) => {
    const ids = expected('desc', created);
    const first = await (await berth.api('/v1/containers?limit=10')).json();
    expect(first).toMatchObject({
      object: 'list',
      first_id: ids[0],
      last_id: ids[9],
      has_more: true,
    });
    const last = (await (await berth.api(`/v1/containers?limit=5&after=${ids[39]}`)).json()) as {
      data: unknown[];
    };
    expect(last).toMatchObject({ first_id: ids[40], last_id: ids[44], has_more: false });
    expect(last.data).toHaveLength(5);
    const empty = await (await berth.api(`/v1/containers?after=${ids[44]}`)).json();
    expect(empty).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  it('filters by exact name', async ({ berth, created }) => {
    const fizz = created.filter((c) => c.name === 'fizz');
    const got: string[] = [];
    for await (const c of berth.client.containers.list({ name: 'fizz', limit: 4, order: 'asc' }))
      got.push(c.id);
    expect(got).toEqual(expected('asc', fizz));
    expect((await berth.client.containers.list({ name: 'fiz' })).data).toEqual([]);
  });

  it('keeps paging correctly when the after-row is deleted between pages', async ({
    berth,
    created,
  }) => {
    const ids = expected('asc', created);
    const page1 = await berth.client.containers.list({ limit: 10, order: 'asc' });
    const afterId = page1.data.at(-1)!.id;
    await berth.client.containers.delete(afterId);
    created.splice(
      created.findIndex((c) => c.id === afterId),
      1,
    );
    const page2 = await berth.client.containers.list({ limit: 10, order: 'asc', after: afterId });
    expect(page2.data.map((c) => c.id)).toEqual(ids.slice(10, 20));
  });

  it.for([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['order=sideways', 'order'],
    ['after=not-an-id', 'after'],
    ['colour=blue', 'colour'],
  ])('rejects %s with param %s', async ([query, param], { berth }) => {
    const res = await berth.api(`/v1/containers?${query}`);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', param });
  });

  it('surfaces query errors as BadRequestError through the SDK', async ({ berth }) => {
    await expect(berth.client.containers.list({ limit: 1000 })).rejects.toBeInstanceOf(
      BadRequestError,
    );
  });
});
