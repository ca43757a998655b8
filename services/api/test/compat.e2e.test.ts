import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { BadRequestError, NotFoundError, RateLimitError, toFile } from 'openai';
import { describe, expect } from 'vitest';
import { berthTest, errorOf } from './fixtures.js';

/** Compatibility with upstream's behaviour as the official SDK sees it (issue 15). */
const it = berthTest({ BERTH_MAX_CONTAINERS_PER_PROJECT: '6' }).extend(
  'blobs',
  { scope: 'file' },
  ({ berth }) =>
    () =>
      existsSync(join(berth.dataDir, 'files'))
        ? readdirSync(join(berth.dataDir, 'files')).filter((n) => n.startsWith('file-'))
        : [],
);

describe('lists follow creation order exactly', () => {
  it('lists containers made one after another, in both orders', async ({ berth }) => {
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

  it('lists files and container files uploaded one after another, in both orders', async ({
    berth,
  }) => {
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
  it('tells SDKs not to retry, so the default client sees the 429 at once', async ({ berth }) => {
    const live = await Promise.all(
      Array.from({ length: 6 }, (_, i) => berth.client.containers.create({ name: `cap${i}` })),
    );
    try {
      const res = await berth.postJson('/v1/containers', { name: 'one-too-many' });
      expect(res.status).toBe(429);
      expect(await errorOf(res)).toMatchObject({ type: 'insufficient_quota' });
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
  it('refuses two file_ids that would land on the same path, naming the second, making nothing', async ({
    berth,
  }) => {
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

  it("keeps a path's id when a file is uploaded onto it again: the earlier id answers the new bytes", async ({
    berth,
  }) => {
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

describe('POST /v1/files', () => {
  it('honours expires_after: expires_at is set, then the file answers 404 and its bytes go', async ({
    berth,
    blobs,
  }) => {
    const file = await berth.client.files.create({
      file: await toFile(Buffer.from('short-lived'), 'brief.txt'),
      purpose: 'user_data',
      expires_after: { anchor: 'created_at', seconds: 3600 },
    });
    expect(file.expires_at).toBe(file.created_at + 3600);
    expect((await berth.client.files.retrieve(file.id)).expires_at).toBe(file.created_at + 3600);
    const forever = await berth.client.files.create({
      file: await toFile(Buffer.from('kept'), 'kept.txt'),
      purpose: 'user_data',
    });
    expect(forever.expires_at ?? null).toBeNull();
    expect(blobs()).toEqual(expect.arrayContaining([file.id, forever.id]));

    // An hour on: the row's deadline moved into the past, as the clock would have.
    await berth.pool.query('update files set expires_at = expires_at - 3601 where id = $1', [
      file.id,
    ]);
    await expect(berth.client.files.retrieve(file.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(berth.client.files.content(file.id)).rejects.toBeInstanceOf(NotFoundError);
    const listed = (await berth.client.files.list()).data.map((f) => f.id);
    expect(listed).toContain(forever.id);
    expect(listed).not.toContain(file.id);
    const copy = await berth.client.containers
      .create({ name: 'expired-copy', file_ids: [file.id] })
      .catch((e) => e);
    expect(copy).toBeInstanceOf(BadRequestError);
    expect(copy.error).toMatchObject({ param: 'file_ids.0' });

    await berth.jobs.reap();
    expect(blobs()).not.toContain(file.id);
    expect(blobs()).toContain(forever.id);
    const { rows } = await berth.pool.query('select id from files where id = $1', [file.id]);
    expect(rows).toEqual([]);
  });

  it.for([
    [{ anchor: 'created_at', seconds: 3599 }, 'expires_after.seconds'],
    [{ anchor: 'created_at', seconds: 2_592_001 }, 'expires_after.seconds'],
    [{ anchor: 'created_at', seconds: 'soon' }, 'expires_after.seconds'],
    [{ anchor: 'last_active_at', seconds: 3600 }, 'expires_after.anchor'],
    [{ seconds: 3600 }, 'expires_after.anchor'],
  ])(
    'refuses expires_after %j with 400 on %s, keeping no bytes',
    async ([expiresAfter, param], { berth, blobs }) => {
      const before = blobs().length;
      const error = await berth.client.files
        .create({
          file: await toFile(Buffer.from('x'), 'x.txt'),
          purpose: 'user_data',
          expires_after: expiresAfter as never,
        })
        .catch((e) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.error).toMatchObject({ type: 'invalid_request_error', param });
      expect(blobs().length).toBe(before);
    },
  );

  // Raw multipart: the SDK itself sends only the last path segment of a name.
  it.for(['dir/name.txt', 'a\\b.txt', '../up.txt', '.berth-upload-x'])(
    'refuses the filename %j at upload, where a later file_ids copy would fail',
    async (name, { berth, blobs }) => {
      const before = blobs().length;
      const form = new FormData();
      form.append('purpose', 'user_data');
      form.append('file', new Blob(['x']), name);
      const res = await berth.api('/v1/files', { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ param: 'file' });
      expect(blobs().length).toBe(before);
    },
  );
});

describe('files written by code', () => {
  it('are listed with their own modification time as created_at, not the listing time', async ({
    berth,
  }) => {
    const container = await berth.client.containers.create({ name: 'mtimes' });
    try {
      const res = await berth.postJson(`/v1/containers/${container.id}/exec`, {
        command:
          'echo a > /mnt/data/old.txt && touch -d @1577934245 /mnt/data/old.txt && ' +
          'echo b > /mnt/data/future.txt && touch -d @4102444800 /mnt/data/future.txt && ' +
          'echo c > /mnt/data/new.txt',
      });
      expect(await res.json()).toMatchObject({ exit_code: 0 });
      const before = Math.floor(Date.now() / 1000);
      // Listed later than they were written: the listing's time would be wrong by this much.
      await new Promise((r) => setTimeout(r, 1100));
      const listed = await berth.client.containers.files.list(container.id, { order: 'asc' });
      const after = Math.ceil(Date.now() / 1000);
      const byPath = new Map(listed.data.map((f) => [f.path, f]));
      expect(byPath.get('/mnt/data/old.txt')).toMatchObject({
        source: 'assistant',
        created_at: 1577934245,
      });
      const created = byPath.get('/mnt/data/new.txt')!.created_at;
      expect(created).toBeGreaterThanOrEqual(before - 2);
      expect(created).toBeLessThan(before + 1);
      // A time in the future is the sandbox's claim, not a fact: no later than the listing.
      expect(byPath.get('/mnt/data/future.txt')!.created_at).toBeLessThanOrEqual(after);
      // The list is in created_at order, and ids still work as cursors.
      expect(listed.data.map((f) => f.path)).toEqual([
        '/mnt/data/old.txt',
        '/mnt/data/new.txt',
        '/mnt/data/future.txt',
      ]);
      const retrieved = await berth.client.containers.files.retrieve(
        byPath.get('/mnt/data/old.txt')!.id,
        { container_id: container.id },
      );
      expect(retrieved.created_at).toBe(1577934245);
    } finally {
      await berth.client.containers.delete(container.id);
    }
  });
});
