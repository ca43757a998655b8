import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequestError, toFile } from 'openai';
import { describe, expect } from 'vitest';
import { dockerExec, inspectSandbox } from '@berth/testkit';
import { berthTest, errorOf, okJson, type RunningBerth } from './fixtures.js';

const CAP_MB = 4;

const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

interface FileResource {
  id: string;
  path: string;
  bytes: number;
  source: string;
  archive_state?: string;
}

/** Exec, expiry, listing and download against one Berth; `populated` makes a container to archive. */
function archiveCalls(berth: RunningBerth) {
  async function exec(id: string, command: string): Promise<number> {
    const res = await berth.postJson(`/v1/containers/${id}/exec`, { command });
    return ((await res.json()) as { exit_code: number }).exit_code;
  }
  return {
    exec,
    /** Moves the container past its deadline and runs the reaper: it expires and is archived. */
    async expire(id: string): Promise<void> {
      await berth.pool.query(
        `update containers set last_active_at = now() - interval '1 day' where id = $1`,
        [id],
      );
      // A tick already in flight may have claimed before the update: the second one runs after it.
      await berth.jobs.reap();
      await berth.jobs.reap();
      expect((await berth.client.containers.retrieve(id)).status).toBe('expired');
      expect(await inspectSandbox(id)).toBeNull();
    },
    async listFiles(id: string): Promise<FileResource[]> {
      const res = await berth.api(`/v1/containers/${id}/files?limit=100`);
      return (await okJson<{ data: FileResource[] }>(res, 'list')).data;
    },
    async download(id: string, fileId: string): Promise<{ status: number; body: Buffer }> {
      const res = await berth.api(`/v1/containers/${id}/files/${fileId}/content`);
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    },
    /** A container holding an upload and a file written by code, with their sha256s. */
    async populated(name: string) {
      const c = await berth.client.containers.create({ name, memory_limit: '1g' });
      const uploaded = randomBytes(300_000);
      const up = await berth.client.containers.files.create(c.id, {
        file: await toFile(uploaded, 'upload.bin'),
      });
      const write = `import os; open('/mnt/data/out/made.bin', 'wb').write(os.urandom(200000))`;
      expect(await exec(c.id, `mkdir -p /mnt/data/out && python3 -c "${write}"`)).toBe(0);
      const made = await dockerExec(c.id, ['sha256sum', '/mnt/data/out/made.bin']);
      return { c, up, uploadedSha: sha(uploaded), madeSha: made.stdout.split(' ')[0]! };
    },
  };
}

const it = berthTest({ BERTH_ARCHIVE_MAX_MB: String(CAP_MB) }).extend(
  'calls',
  { scope: 'file' },
  ({ berth }) => archiveCalls(berth),
);

describe('files after expiry', () => {
  it('keeps uploads and files written by code downloadable, byte for byte, and read-only', async ({
    berth,
    calls,
  }) => {
    const { c, up, uploadedSha, madeSha } = await calls.populated('archived');
    await calls.expire(c.id);

    const files = await calls.listFiles(c.id);
    const byPath = Object.fromEntries(files.map((f) => [f.path, f]));
    expect(byPath['/mnt/data/upload.bin']).toMatchObject({
      id: up.id,
      source: 'user',
      archive_state: 'archived',
    });
    expect(byPath['/mnt/data/out/made.bin']).toMatchObject({
      source: 'assistant',
      bytes: 200_000,
      archive_state: 'archived',
    });
    expect(sha((await calls.download(c.id, up.id)).body)).toBe(uploadedSha);
    expect(sha((await calls.download(c.id, byPath['/mnt/data/out/made.bin']!.id)).body)).toBe(
      madeSha,
    );
    // Retrieve works too; writes answer upstream's 400.
    expect(
      await berth.client.containers.files.retrieve(up.id, { container_id: c.id }),
    ).toMatchObject({
      id: up.id,
    });
    const write = await berth.client.containers.files
      .create(c.id, { file: await toFile(Buffer.from('late'), 'late.txt') })
      .catch((e: unknown) => e);
    expect(write).toBeInstanceOf(BadRequestError);
    expect((write as BadRequestError).error).toMatchObject({
      message: 'Container is expired.',
      code: 'container_expired',
    });
    const del = await berth.api(`/v1/containers/${c.id}/files/${up.id}`, { method: 'DELETE' });
    expect(del.status).toBe(400);
    expect((await errorOf(del)).message).toBe('Container is expired.');
  });

  it('reports a file past the archive cap instead of dropping it silently', async ({
    berth,
    calls,
  }) => {
    const c = await berth.client.containers.create({ name: 'over-cap' });
    await calls.exec(
      c.id,
      `head -c 1000 /dev/urandom > /mnt/data/small.txt && head -c ${(CAP_MB + 1) * 1024 * 1024} /dev/urandom > /mnt/data/huge.bin`,
    );
    await calls.expire(c.id);
    const files = await calls.listFiles(c.id);
    const huge = files.find((f) => f.path === '/mnt/data/huge.bin')!;
    expect(huge).toMatchObject({ archive_state: 'over_cap', bytes: (CAP_MB + 1) * 1024 * 1024 });
    expect(files.find((f) => f.path === '/mnt/data/small.txt')).toMatchObject({
      archive_state: 'archived',
    });
    const res = await berth.api(`/v1/containers/${c.id}/files/${huge.id}/content`);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('file_not_archived');
    expect(error.message).toContain(`archive cap of ${CAP_MB * 1024 * 1024} bytes`);
  });

  it('restores an archive into a new running container; the old one stays expired', async ({
    berth,
    calls,
  }) => {
    const { c, up, uploadedSha, madeSha } = await calls.populated('to-restore');
    await calls.expire(c.id);
    const started = Date.now();
    const res = await berth.api(`/v1/containers/${c.id}/restore`, { method: 'POST' });
    const restored = (await res.json()) as { id: string };
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(restored.id).not.toBe(c.id);
    expect(restored).toMatchObject({
      object: 'container',
      name: 'to-restore',
      status: 'running',
      memory_limit: '1g',
      expires_after: { anchor: 'last_active_at', minutes: 20 },
    });
    expect((await dockerExec(restored.id, ['sha256sum', '/mnt/data/upload.bin'])).stdout).toContain(
      uploadedSha,
    );
    expect(
      (await dockerExec(restored.id, ['sha256sum', '/mnt/data/out/made.bin'])).stdout,
    ).toContain(madeSha);
    const files = await calls.listFiles(restored.id);
    expect(files.find((f) => f.path === '/mnt/data/upload.bin')).toMatchObject({ source: 'user' });
    expect(files.find((f) => f.path === '/mnt/data/out/made.bin')).toMatchObject({
      source: 'assistant',
    });
    expect(files.every((f) => f.archive_state === undefined)).toBe(true);
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('expired');
    expect(sha((await calls.download(c.id, up.id)).body)).toBe(uploadedSha);
    // A running container has nothing to restore.
    const again = await berth.api(`/v1/containers/${restored.id}/restore`, { method: 'POST' });
    expect(again.status).toBe(400);
    expect((await errorOf(again)).code).toBe('no_archive');
    await berth.client.containers.delete(restored.id);
  });

  it('purges the archive with the row when retention ends', async ({ berth, calls }) => {
    const { c, up } = await calls.populated('purged');
    await calls.expire(c.id);
    const archives = join(berth.dataDir, 'archives');
    const mine = () => readdirSync(archives).filter((name) => name.startsWith(c.id));
    expect(mine()).toHaveLength(2);
    await berth.pool.query(
      `update containers set updated_at = now() - interval '25 hours' where id = $1`,
      [c.id],
    );
    await berth.jobs.reap();
    expect(mine()).toEqual([]);
    expect((await berth.api(`/v1/containers/${c.id}`)).status).toBe(404);
    expect((await berth.api(`/v1/containers/${c.id}/files/${up.id}/content`)).status).toBe(404);
  });

  it('removes the archive when an expired container is deleted', async ({ berth, calls }) => {
    const { c } = await calls.populated('deleted');
    await calls.expire(c.id);
    expect(readdirSync(join(berth.dataDir, 'archives')).some((n) => n.startsWith(c.id))).toBe(true);
    await berth.client.containers.delete(c.id);
    expect(readdirSync(join(berth.dataDir, 'archives')).some((n) => n.startsWith(c.id))).toBe(
      false,
    );
  });

  it('never lets an archive failure block expiry; such a container answers as upstream', async ({
    berth,
    calls,
  }) => {
    const c = await berth.client.containers.create({ name: 'unreadable' });
    // The code makes /mnt/data unlistable: the archive fails as a whole.
    expect(await calls.exec(c.id, 'mkdir /mnt/data/locked && chmod 000 /mnt/data/locked')).toBe(0);
    await berth.pool.query(
      `update containers set last_active_at = now() - interval '1 day' where id = $1`,
      [c.id],
    );
    await berth.jobs.reap();
    await berth.jobs.reap();
    expect(await inspectSandbox(c.id)).toBeNull();
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('expired');
    const { rows } = await berth.pool.query(
      'select archived_at, archive_error from containers where id = $1',
      [c.id],
    );
    expect(rows[0].archived_at).toBeNull();
    expect(rows[0].archive_error).toBeTruthy();
    const error = await berth.client.containers.files.list(c.id).catch((e: unknown) => e);
    expect((error as BadRequestError).error).toMatchObject({ message: 'Container is expired.' });
    const restore = await berth.api(`/v1/containers/${c.id}/restore`, { method: 'POST' });
    expect((await errorOf(restore)).code).toBe('no_archive');
  });
});

describe('files after expiry, turned off (upstream behaviour)', () => {
  it('keeps nothing: file calls on an expired container answer 400', async ({ berthWith }) => {
    const off = await berthWith({ BERTH_ARCHIVE_ON_EXPIRY: '0' });
    const c = await off.client.containers.create({ name: 'upstream' });
    await off.client.containers.files.create(c.id, {
      file: await toFile(Buffer.from('x'), 'x.txt'),
    });
    await off.pool.query(
      `update containers set last_active_at = now() - interval '1 day' where id = $1`,
      [c.id],
    );
    await off.jobs.reap();
    const error = await off.client.containers.files.list(c.id).catch((e: unknown) => e);
    expect((error as BadRequestError).error).toMatchObject({ message: 'Container is expired.' });
    expect(existsSync(join(off.dataDir, 'archives'))).toBe(false);
  });
});
