import OpenAI, { BadRequestError, RateLimitError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBerth, type RunningBerth } from './fixtures.js';

/** Compatibility with upstream's behaviour as the official SDK sees it (issue 15). */
let berth: RunningBerth;
beforeAll(async () => {
  berth = await startBerth({ BERTH_MAX_CONTAINERS_PER_PROJECT: '6' });
});
afterAll(async () => {
  await berth?.[Symbol.asyncDispose]();
});

describe('lists follow creation order exactly', () => {
  it('lists containers made one after another, in both orders', async () => {
    const made: string[] = [];
    for (let i = 0; i < 4; i++)
      made.push((await berth.client.containers.create({ name: `o${i}` })).id);
    const asc = await berth.client.containers.list({ order: 'asc', limit: 100 });
    expect(asc.data.map((c) => c.id)).toEqual(made);
    const desc = await berth.client.containers.list({ limit: 100 });
    expect(desc.data.map((c) => c.id)).toEqual([...made].reverse());
    // Paged one by one, each id a cursor.
    const paged: string[] = [];
    for await (const c of berth.client.containers.list({ order: 'asc', limit: 1 }))
      paged.push(c.id);
    expect(paged).toEqual(made);
    await Promise.all(made.map((id) => berth.client.containers.delete(id)));
  });

  it('lists files and container files uploaded one after another, in both orders', async () => {
    const files: string[] = [];
    for (let i = 0; i < 12; i++) {
      const file = await toFile(Buffer.from(`f${i}`), `f${i}.txt`);
      files.push((await berth.client.files.create({ file, purpose: 'user_data' })).id);
    }
    expect((await berth.client.files.list({ order: 'asc' })).data.map((f) => f.id)).toEqual(files);
    expect((await berth.client.files.list()).data.map((f) => f.id)).toEqual([...files].reverse());

    const container = await berth.client.containers.create({ name: 'order-files' });
    const uploaded: string[] = [];
    for (let i = 0; i < 12; i++) {
      const file = await toFile(Buffer.from(`c${i}`), `c${i}.txt`);
      uploaded.push((await berth.client.containers.files.create(container.id, { file })).id);
    }
    const listed = await berth.client.containers.files.list(container.id, { order: 'asc' });
    expect(listed.data.map((f) => f.id)).toEqual(uploaded);
    const desc = await berth.client.containers.files.list(container.id, { order: 'desc' });
    expect(desc.data.map((f) => f.id)).toEqual([...uploaded].reverse());
    await berth.client.containers.delete(container.id);
  });
});

describe('the live-container cap', () => {
  it('tells SDKs not to retry, so the default client sees the 429 at once', async () => {
    const live = await Promise.all(
      Array.from({ length: 6 }, (_, i) => berth.client.containers.create({ name: `cap${i}` })),
    );
    try {
      const res = await berth.api('/v1/containers', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'one-too-many' }),
      });
      expect(res.status).toBe(429);
      expect((await res.json()).error).toMatchObject({ type: 'insufficient_quota' });
      expect(res.headers.get('x-should-retry')).toBe('false');
      expect(res.headers.get('retry-after')).toBeNull();

      // The official SDK with its default retries (2, honouring Retry-After).
      const sdk = new OpenAI({ apiKey: berth.apiKey, baseURL: `${berth.url}/v1` });
      const started = performance.now();
      const error = await sdk.containers.create({ name: 'one-too-many' }).catch((e) => e);
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(RateLimitError);
      expect(error).toMatchObject({ status: 429, type: 'insufficient_quota' });
      console.log(
        `insufficient_quota reached the default SDK client after ${elapsed.toFixed(0)} ms`,
      );
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      await Promise.all(live.map((c) => berth.client.containers.delete(c.id)));
    }
  }, 120_000);
});

describe('nothing in /mnt/data is lost silently', () => {
  it('refuses two file_ids that would land on the same path, naming the second, making nothing', async () => {
    const upload = async (name: string, text: string) =>
      (
        await berth.client.files.create({
          file: await toFile(Buffer.from(text), name),
          purpose: 'user_data',
        })
      ).id;
    const a = await upload('same.csv', 'a');
    const other = await upload('other.csv', 'o');
    const b = await upload('same.csv', 'b');
    const before = (await berth.runtime.listManaged()).length;

    for (const [fileIds, param] of [
      [[a, other, b], 'file_ids.2'],
      [[other, other], 'file_ids.1'],
    ] as const) {
      const error = await berth.client.containers
        .create({ name: 'dup', file_ids: [...fileIds] })
        .catch((e) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(error.message).toMatch(/\/mnt\/data\/(same|other)\.csv/);
    }
    expect((await berth.runtime.listManaged()).length).toBe(before);
    expect((await berth.client.containers.list()).data.filter((c) => c.name === 'dup')).toEqual([]);
  });

  it("keeps a path's id when a file is uploaded onto it again: the earlier id answers the new bytes", async () => {
    const container = await berth.client.containers.create({ name: 'reupload' });
    try {
      const first = await berth.client.containers.files.create(container.id, {
        file: await toFile(Buffer.from('version one'), 'notes.txt'),
      });
      const second = await berth.client.containers.files.create(container.id, {
        file: await toFile(Buffer.from('version two, longer'), 'notes.txt'),
      });
      expect(second.id).toBe(first.id);
      expect(second).toMatchObject({
        path: '/mnt/data/notes.txt',
        bytes: 19,
        created_at: first.created_at,
      });
      const again = await berth.client.containers.files.retrieve(first.id, {
        container_id: container.id,
      });
      expect(again).toMatchObject({ id: first.id, bytes: 19 });
      const content = await berth.client.containers.files.content.retrieve(first.id, {
        container_id: container.id,
      });
      expect(await content.text()).toBe('version two, longer');
      const listed = await berth.client.containers.files.list(container.id);
      expect(listed.data.map((f) => f.id)).toEqual([first.id]);
    } finally {
      await berth.client.containers.delete(container.id);
    }
  });
});
