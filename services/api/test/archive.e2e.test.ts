import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadRequestError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerExec, inspectSandbox } from '@berth/testkit';
import { startBerth, type RunningBerth } from './fixtures.js';

let berth: RunningBerth;
let dataDir: string;
const CAP_MB = 4;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'berth-archive-'));
  berth = await startBerth({ BERTH_DATA_DIR: dataDir, BERTH_ARCHIVE_MAX_MB: String(CAP_MB) });
});
afterAll(async () => {
  await berth?.[Symbol.asyncDispose]();
  rmSync(dataDir, { recursive: true, force: true });
});

const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

interface FileResource {
  id: string;
  path: string;
  bytes: number;
  source: string;
  archive_state?: string;
}

async function exec(id: string, command: string): Promise<number> {
  const res = await berth.api(`/v1/containers/${id}/exec`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ command }),
  });
  return ((await res.json()) as { exit_code: number }).exit_code;
}

/** Moves the container past its deadline and runs the reaper: it expires and is archived. */
async function expire(id: string): Promise<void> {
  await berth.pool.query(
    `update containers set last_active_at = now() - interval '1 day' where id = $1`,
    [id],
  );
  // A tick already in flight may have claimed before the update: the second one runs after it.
  await berth.jobs.reap();
  await berth.jobs.reap();
  expect((await berth.client.containers.retrieve(id)).status).toBe('expired');
  expect(await inspectSandbox(id)).toBeNull();
}

async function listFiles(id: string): Promise<FileResource[]> {
  const res = await berth.api(`/v1/containers/${id}/files?limit=100`);
  const body = await res.json();
  if (res.status !== 200) throw new Error(`list answered ${res.status}: ${JSON.stringify(body)}`);
  return (body as { data: FileResource[] }).data;
}

async function download(id: string, fileId: string): Promise<{ status: number; body: Buffer }> {
  const res = await berth.api(`/v1/containers/${id}/files/${fileId}/content`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** A container holding an upload and a file written by code, with their sha256s. */
async function populated(name: string) {
  const c = await berth.client.containers.create({ name, memory_limit: '1g' });
  const uploaded = randomBytes(300_000);
  const up = await berth.client.containers.files.create(c.id, {
    file: await toFile(uploaded, 'upload.bin'),
  });
  const write = `import os; open('/mnt/data/out/made.bin', 'wb').write(os.urandom(200000))`;
  expect(await exec(c.id, `mkdir -p /mnt/data/out && python3 -c "${write}"`)).toBe(0);
  const made = await dockerExec(c.id, ['sha256sum', '/mnt/data/out/made.bin']);
  return { c, up, uploadedSha: sha(uploaded), madeSha: made.stdout.split(' ')[0]! };
}

describe('files after expiry', () => {
  it('keeps uploads and files written by code downloadable, byte for byte, and read-only', async () => {
    const { c, up, uploadedSha, madeSha } = await populated('archived');
    await expire(c.id);

    const files = await listFiles(c.id);
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
    expect(sha((await download(c.id, up.id)).body)).toBe(uploadedSha);
    expect(sha((await download(c.id, byPath['/mnt/data/out/made.bin']!.id)).body)).toBe(madeSha);
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
    expect((await del.json()).error.message).toBe('Container is expired.');
  });

  it('reports a file past the archive cap instead of dropping it silently', async () => {
    const c = await berth.client.containers.create({ name: 'over-cap' });
    await exec(
      c.id,
      `head -c 1000 /dev/urandom > /mnt/data/small.txt && head -c ${(CAP_MB + 1) * 1024 * 1024} /dev/urandom > /mnt/data/huge.bin`,
    );
    await expire(c.id);
    const files = await listFiles(c.id);
    const huge = files.find((f) => f.path === '/mnt/data/huge.bin')!;
    expect(huge).toMatchObject({ archive_state: 'over_cap', bytes: (CAP_MB + 1) * 1024 * 1024 });
    expect(files.find((f) => f.path === '/mnt/data/small.txt')).toMatchObject({
      archive_state: 'archived',
    });
    const res = await berth.api(`/v1/containers/${c.id}/files/${huge.id}/content`);
    expect(res.status).toBe(400);
    const error = (await res.json()).error;
    expect(error.code).toBe('file_not_archived');
    expect(error.message).toContain(`archive cap of ${CAP_MB * 1024 * 1024} bytes`);
  });

  it('restores an archive into a new running container; the old one stays expired', async () => {
    const { c, up, uploadedSha, madeSha } = await populated('to-restore');
    await expire(c.id);
    const started = Date.now();
    const res = await berth.api(`/v1/containers/${c.id}/restore`, { method: 'POST' });
    const restored = await res.json();
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
    const files = await listFiles(restored.id);
    expect(files.find((f) => f.path === '/mnt/data/upload.bin')).toMatchObject({ source: 'user' });
    expect(files.find((f) => f.path === '/mnt/data/out/made.bin')).toMatchObject({
      source: 'assistant',
    });
    expect(files.every((f) => f.archive_state === undefined)).toBe(true);
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('expired');
    expect(sha((await download(c.id, up.id)).body)).toBe(uploadedSha);
    // A running container has nothing to restore.
    const again = await berth.api(`/v1/containers/${restored.id}/restore`, { method: 'POST' });
    expect(again.status).toBe(400);
    expect((await again.json()).error.code).toBe('no_archive');
    await berth.client.containers.delete(restored.id);
  });

  it('purges the archive with the row when retention ends', async () => {
    const { c, up } = await populated('purged');
    await expire(c.id);
    const archives = join(dataDir, 'archives');
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

  it('removes the archive when an expired container is deleted', async () => {
    const { c } = await populated('deleted');
    await expire(c.id);
    expect(readdirSync(join(dataDir, 'archives')).some((n) => n.startsWith(c.id))).toBe(true);
    await berth.client.containers.delete(c.id);
    expect(readdirSync(join(dataDir, 'archives')).some((n) => n.startsWith(c.id))).toBe(false);
  });

  it('never lets an archive failure block expiry; such a container answers as upstream', async () => {
    const c = await berth.client.containers.create({ name: 'unreadable' });
    // The code makes /mnt/data unlistable: the archive fails as a whole.
    expect(await exec(c.id, 'mkdir /mnt/data/locked && chmod 000 /mnt/data/locked')).toBe(0);
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
    expect((await restore.json()).error.code).toBe('no_archive');
  });
});

describe('files after expiry, turned off (upstream behaviour)', () => {
  it('keeps nothing: file calls on an expired container answer 400', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-archive-off-'));
    const off = await startBerth({ BERTH_DATA_DIR: dir, BERTH_ARCHIVE_ON_EXPIRY: '0' });
    try {
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
      expect(existsSync(join(dir, 'archives'))).toBe(false);
    } finally {
      await off[Symbol.asyncDispose]();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
