import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeBlobStore, FakeFileStore, rejection } from '@berth/testkit/fakes';
import { ManualClock, unixSeconds } from '../clock.js';
import { InvalidRequestError, NotFoundError, PayloadTooLargeError } from '../errors.js';
import { isId } from '../ids.js';
import { FileExpiry } from './file-expiry.js';
import { FilesService } from './files-service.js';

const PROJECT = 'proj_a';

function setup(maxBytes = 1024) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12));
  const files = new FakeFileStore();
  const blobs = new FakeBlobStore();
  const service = new FilesService({ files, blobs, clock, maxBytes });
  const expiry = new FileExpiry({ files, blobs, clock });
  /** Upload and commit, as the route does. */
  const create = async (
    name = 'data.csv',
    bytes = Buffer.from('a,b\n1,2\n'),
    expiresAfterSeconds: number | null = null,
    purpose = 'user_data',
  ) => {
    const stored = await service.upload(PROJECT, name, Readable.from([bytes]));
    return service.commit(PROJECT, stored, name, purpose, expiresAfterSeconds);
  };
  const read = async (id: string, project = PROJECT) => {
    const { stream } = await service.content(project, id);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  return { clock, files, blobs, service, expiry, create, read };
}

describe('FilesService', () => {
  it('stores the bytes, then the row, and serves both back', async () => {
    const { service, create, read, clock } = setup();
    const record = await create('data.csv', Buffer.from('hello'));

    expect(isId('file', record.id)).toBe(true);
    expect(record).toMatchObject({
      projectId: PROJECT,
      filename: 'data.csv',
      purpose: 'user_data',
      bytes: 5,
      createdAt: unixSeconds(clock.now()),
      expiresAt: null,
    });
    await expect(service.get(PROJECT, record.id)).resolves.toEqual(record);
    expect((await read(record.id)).toString()).toBe('hello');
  });

  it.each([
    ['a path', 'dir/data.csv'],
    ['a Windows path', 'dir\\data.csv'],
    ['a parent', '..'],
    ['a percent-encoded parent', '%2e%2e'],
    ['the upload prefix', '.berth-upload-x'],
    ['a control character', 'a\u0001b'],
    ['an empty name', ''],
    ['a name over 255 bytes', 'é'.repeat(128)],
  ])('refuses %s as a file name before storing a byte', async (_, name) => {
    const { service, blobs } = setup();
    const error = await rejection(service.upload(PROJECT, name, Readable.from([Buffer.from('x')])));

    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).param).toBe('file');
    expect(blobs.blobs.size).toBe(0);
  });

  it('takes names that only look odd: a percent sign, spaces, unicode', async () => {
    const { create } = setup();
    for (const name of ['100%.txt', 'my report.pdf', 'données.csv'])
      await expect(create(name)).resolves.toMatchObject({ filename: name });
  });

  it('refuses a missing or unknown purpose and drops the bytes already stored', async () => {
    const { service, blobs, files } = setup();
    for (const purpose of [undefined, 'nonsense']) {
      const stored = await service.upload(PROJECT, 'a.txt', Readable.from([Buffer.from('x')]));
      expect(blobs.blobs.has(stored.id)).toBe(true);
      const error = await rejection(service.commit(PROJECT, stored, 'a.txt', purpose));

      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).param).toBe('purpose');
      expect(blobs.blobs.has(stored.id)).toBe(false);
    }
    expect(files.rows).toEqual([]);
  });

  it('drops the bytes when the row cannot be written, and says why', async () => {
    const { service, blobs, files } = setup();
    files.hooks.insert = () => {
      throw new Error('postgres is down');
    };
    const stored = await service.upload(PROJECT, 'a.txt', Readable.from([Buffer.from('x')]));

    await expect(service.commit(PROJECT, stored, 'a.txt', 'user_data')).rejects.toThrow(
      'postgres is down',
    );
    expect(blobs.blobs.size).toBe(0);
  });

  it('refuses a file past the size limit and keeps nothing of it', async () => {
    const { service, blobs } = setup(4);
    const error = await rejection(
      service.upload(PROJECT, 'big.bin', Readable.from([Buffer.from('12'), Buffer.from('345')])),
    );

    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(blobs.blobs.size).toBe(0);
  });

  it("answers 404 for a malformed id, another project's file and a deleted one", async () => {
    const { service, create, blobs } = setup();
    const record = await create();

    for (const [project, id] of [
      [PROJECT, 'not-a-file-id'],
      ['proj_b', record.id],
    ] as const) {
      expect(await rejection(service.get(project, id))).toBeInstanceOf(NotFoundError);
      expect(await rejection(service.content(project, id))).toBeInstanceOf(NotFoundError);
      expect(await rejection(service.delete(project, id))).toBeInstanceOf(NotFoundError);
    }
    await service.delete(PROJECT, record.id);

    expect(blobs.blobs.size).toBe(0);
    expect(await rejection(service.get(PROJECT, record.id))).toBeInstanceOf(NotFoundError);
    expect(await rejection(service.delete(PROJECT, record.id))).toBeInstanceOf(NotFoundError);
  });

  it('answers 404 for a row whose bytes are gone, never an empty file', async () => {
    const { service, create, blobs } = setup();
    const record = await create();
    blobs.blobs.delete(record.id);

    expect(await rejection(service.content(PROJECT, record.id))).toBeInstanceOf(NotFoundError);
  });

  it('lists by purpose, in pages, newest first by default', async () => {
    const { service, create, clock } = setup();
    const made = [];
    for (const purpose of ['user_data', 'assistants', 'user_data', 'user_data']) {
      made.push(await create('f.txt', Buffer.from('x'), null, purpose));
      clock.advance(1_000);
    }
    const userData = made.filter((r) => r.purpose === 'user_data').map((r) => r.id);

    const first = await service.list(PROJECT, { limit: 2, order: 'desc', purpose: 'user_data' });
    expect(first.items.map((r) => r.id)).toEqual([userData[2], userData[1]]);
    expect(first.hasMore).toBe(true);
    const second = await service.list(PROJECT, {
      limit: 2,
      order: 'desc',
      purpose: 'user_data',
      after: first.items[1]!.id,
    });
    expect(second.items.map((r) => r.id)).toEqual([userData[0]]);
    expect(second.hasMore).toBe(false);
    const all = await service.list(PROJECT, { limit: 10, order: 'asc' });
    expect(all.items.map((r) => r.id)).toEqual(made.map((r) => r.id));
  });
});

describe('expires_after on Files API files', () => {
  it('reads the file until created_at + seconds, then 404 everywhere; the purge takes bytes and row', async () => {
    const { service, create, expiry, clock, files, blobs } = setup();
    const record = await create('short.txt', Buffer.from('x'), 60);
    const kept = await create('kept.txt', Buffer.from('y'));
    expect(record.expiresAt).toBe(record.createdAt + 60);

    clock.advance(59_000);
    await expect(service.get(PROJECT, record.id)).resolves.toMatchObject({ id: record.id });
    expect(await expiry.purge(10)).toBe(0);

    clock.advance(1_000);
    expect(await rejection(service.get(PROJECT, record.id))).toBeInstanceOf(NotFoundError);
    expect(await rejection(service.content(PROJECT, record.id))).toBeInstanceOf(NotFoundError);
    const listed = await service.list(PROJECT, { limit: 10, order: 'asc' });
    expect(listed.items.map((r) => r.id)).toEqual([kept.id]);

    expect(await expiry.purge(10)).toBe(1);
    expect(files.rows.map((r) => r.id)).toEqual([kept.id]);
    expect([...blobs.blobs.keys()]).toEqual([kept.id]);
    // A second replica purging the same file finds nothing left to do, and fails on nothing.
    expect(await expiry.purge(10)).toBe(0);
  });

  it('takes the bytes before the row: a purge that stops in between leaves a row that reads as gone', async () => {
    const { service, create, expiry, clock, files, blobs } = setup();
    const record = await create('short.txt', Buffer.from('x'), 1);
    clock.advance(1_000);
    files.hooks.delete = () => {
      throw new Error('crash');
    };

    await expect(expiry.purge(10)).rejects.toThrow('crash');
    expect(blobs.blobs.has(record.id)).toBe(false);
    expect(files.rows.map((r) => r.id)).toEqual([record.id]);
    expect(await rejection(service.get(PROJECT, record.id))).toBeInstanceOf(NotFoundError);

    files.hooks.delete = undefined;
    expect(await expiry.purge(10)).toBe(1);
    expect(files.rows).toEqual([]);
  });

  it('purges at most the limit per call, earliest deadline first', async () => {
    const { create, expiry, clock, files } = setup();
    const late = await create('late.txt', Buffer.from('x'), 30);
    const early = await create('early.txt', Buffer.from('x'), 10);
    clock.advance(60_000);

    expect(await expiry.purge(1)).toBe(1);
    expect(files.rows.map((r) => r.id)).toEqual([late.id]);
    expect(early.expiresAt).toBeLessThan(late.expiresAt!);
  });
});
