import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequestError, NotFoundError, toFile } from 'openai';
import { describe, expect } from 'vitest';
import { dockerExec, inspectSandbox } from '@berth/testkit';
import { REAP_BY_HAND, containerTest, scrapeMetrics, type RunningBerth } from './fixtures.js';

const METRICS_TOKEN = 'metrics-token-for-files-0123456789';

const it = containerTest('files', {
  ...REAP_BY_HAND,
  BERTH_MAX_UPLOAD_BYTES: String(300 * 1024 * 1024),
  BERTH_METRICS_TOKEN: METRICS_TOKEN,
})
  .extend('download', { scope: 'file' }, ({ berth }) => async (path: string) => {
    const res = await berth.api(path);
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  })
  .extend(
    'execIn',
    { scope: 'file' },
    ({ berth }) =>
      async (id: string, command: string) =>
        (await (await berth.postJson(`/v1/containers/${id}/exec`, { command })).json()) as {
          exit_code: number;
          stdout: string;
        },
  );

const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A multipart body streamed from a generator, so 200 MB never sits in memory on either side. */
function streamingMultipart(name: string, size: number, fields: Record<string, string> = {}) {
  const boundary = `berth${randomBytes(8).toString('hex')}`;
  const hash = createHash('sha256');
  const chunk = randomBytes(1024 * 1024);
  async function* parts() {
    for (const [k, v] of Object.entries(fields)) {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`,
      );
    }
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    for (let sent = 0; sent < size; sent += chunk.length) {
      const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
      hash.update(piece);
      yield piece;
    }
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const iterator = parts();
  const body = new ReadableStream({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  });
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    digest: () => hash.digest('hex'),
  };
}

describe('Files API', () => {
  it('uploads, retrieves, lists, downloads and deletes', async ({ berth }) => {
    const data = randomBytes(5 * 1024 * 1024);
    const file = await berth.client.files.create({
      file: await toFile(data, 'blob.bin'),
      purpose: 'user_data',
    });
    expect(file).toMatchObject({
      object: 'file',
      bytes: data.length,
      filename: 'blob.bin',
      purpose: 'user_data',
    });
    expect(file.id).toMatch(/^file-[0-9a-f]{32}$/);
    expect(await berth.client.files.retrieve(file.id)).toMatchObject({
      id: file.id,
      bytes: data.length,
    });
    const content = await berth.client.files.content(file.id);
    expect(sha(Buffer.from(await content.arrayBuffer()))).toBe(sha(data));

    const other = await berth.client.files.create({
      file: await toFile(Buffer.from('x'), 'x.txt'),
      purpose: 'assistants',
    });
    const listed = await berth.client.files.list({ purpose: 'user_data' });
    expect(listed.data.map((f) => f.id)).toEqual([file.id]);
    // Ordered by (created_at, id): within one second the id decides.
    const expected = [file, other]
      .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))
      .map((f) => f.id);
    expect((await berth.client.files.list({ order: 'asc' })).data.map((f) => f.id)).toEqual(
      expected,
    );

    await berth.client.files.delete(file.id);
    await expect(berth.client.files.retrieve(file.id)).rejects.toBeInstanceOf(NotFoundError);
    const gone = await berth.api(`/v1/files/${file.id}/content`);
    expect(gone.status).toBe(404);
  });

  it('refuses a missing or unknown purpose and keeps nothing', async ({ berth }) => {
    const error = await berth.client.files
      .create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'nonsense' as 'user_data' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('purpose');
    expect((await berth.client.files.list({ purpose: 'nonsense' })).data).toEqual([]);
  });
});

describe('container files', () => {
  it.for([
    ['empty.bin', 0],
    ['one.bin', 1],
    ['five mb ü.bin', 5 * 1024 * 1024],
  ] as const)(
    'uploads %s (%d bytes) with the SDK and downloads it back intact',
    async ([name, size], { berth, containerId }) => {
      const data = randomBytes(size);
      const f = await berth.client.containers.files.create(containerId, {
        file: await toFile(data, name),
      });
      expect(f).toMatchObject({
        object: 'container.file',
        container_id: containerId,
        bytes: size,
        path: `/mnt/data/${name}`,
        source: 'user',
      });
      expect(f.id).toMatch(/^cfile_[0-9a-f]{32}$/);
      const res = await berth.client.containers.files.content.retrieve(f.id, {
        container_id: containerId,
      });
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(data));
      const inside = await dockerExec(containerId, ['sha256sum', `/mnt/data/${name}`]);
      expect(inside.stdout.split(' ')[0]).toBe(sha(data));
    },
  );

  it('streams 200 MB in and out, compared by sha256', async ({ berth, containerId }) => {
    const size = 200 * 1024 * 1024;
    const upload = streamingMultipart('big.bin', size);
    const res = await berth.api(`/v1/containers/${containerId}/files`, {
      method: 'POST',
      headers: { 'content-type': upload.contentType },
      body: upload.body,
      duplex: 'half',
    } as RequestInit);
    const created = (await res.json()) as { id: string; bytes: number };
    expect(res.status).toBe(200);
    expect(created.bytes).toBe(size);
    const down = await berth.api(`/v1/containers/${containerId}/files/${created.id}/content`);
    expect(down.headers.get('content-length')).toBe(String(size));
    const hash = createHash('sha256');
    for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
    expect(hash.digest('hex')).toBe(upload.digest());
    await berth.client.containers.files.delete(created.id, { container_id: containerId });
  }, 180_000);

  it('sends Content-Type by extension, Content-Length and Content-Disposition', async ({
    berth,
    containerId,
    download,
  }) => {
    const f = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from('a,b\n1,2\n'), 'data ä.csv'),
    });
    const { res, body } = await download(`/v1/containers/${containerId}/files/${f.id}/content`);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-length')).toBe('8');
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="data _.csv"; filename*=UTF-8''data%20%C3%A4.csv`,
    );
    expect(body.toString()).toBe('a,b\n1,2\n');
    const bin = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from([1]), 'noext'),
    });
    expect(
      (await download(`/v1/containers/${containerId}/files/${bin.id}/content`)).res.headers.get(
        'content-type',
      ),
    ).toBe('application/octet-stream');
  });

  it('replaces a file uploaded to an existing path', async ({ berth, containerId, download }) => {
    const first = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from('old'), 'same.txt'),
    });
    const second = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from('new!'), 'same.txt'),
    });
    expect(second.path).toBe(first.path);
    expect(
      (await download(`/v1/containers/${containerId}/files/${second.id}/content`)).body.toString(),
    ).toBe('new!');
    const list = await berth.client.containers.files.list(containerId, { limit: 100 });
    expect(list.data.filter((f) => f.path === '/mnt/data/same.txt')).toHaveLength(1);
  });

  it('puts an upload under the optional path', async ({ berth, containerId }) => {
    const form = new FormData();
    form.append('path', 'reports/q1/');
    form.append('file', new Blob(['hello']), 'r.txt');
    const res = await berth.api(`/v1/containers/${containerId}/files`, {
      method: 'POST',
      body: form,
    });
    expect(await res.json()).toMatchObject({ path: '/mnt/data/reports/q1/r.txt', bytes: 5 });
    expect((await dockerExec(containerId, ['cat', '/mnt/data/reports/q1/r.txt'])).stdout).toBe(
      'hello',
    );
  });

  it('copies a Files API file in by file_id (JSON)', async ({ berth, containerId }) => {
    const file = await berth.client.files.create({
      file: await toFile(Buffer.from('from files api'), 'copied.txt'),
      purpose: 'user_data',
    });
    const f = await berth.client.containers.files.create(containerId, { file_id: file.id });
    expect(f).toMatchObject({ path: '/mnt/data/copied.txt', bytes: 14, source: 'user' });
    const unknown = await berth.client.containers.files
      .create(containerId, { file_id: 'file-' + '0'.repeat(32) })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
  });

  it('lists files written by code as assistant files, and forgets ones deleted inside', async ({
    berth,
    containerId,
    download,
    execIn,
  }) => {
    const r = await execIn(
      containerId,
      `python3 -c "open('/mnt/data/plot data.txt','w').write('x'*1234)"`,
    );
    expect(r.exit_code).toBe(0);
    const list = await berth.client.containers.files.list(containerId, { limit: 100 });
    const written = list.data.find((f) => f.path === '/mnt/data/plot data.txt');
    expect(written).toMatchObject({ source: 'assistant', bytes: 1234 });
    const { body } = await download(`/v1/containers/${containerId}/files/${written!.id}/content`);
    expect(body.toString()).toBe('x'.repeat(1234));

    await execIn(containerId, `rm '/mnt/data/plot data.txt'`);
    const after = await berth.client.containers.files.list(containerId, { limit: 100 });
    expect(after.data.find((f) => f.path === '/mnt/data/plot data.txt')).toBeUndefined();
    await expect(
      berth.client.containers.files.retrieve(written!.id, { container_id: containerId }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('deletes a file from the sandbox too', async ({ berth, containerId }) => {
    const f = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from('bye'), 'bye.txt'),
    });
    await berth.client.containers.files.delete(f.id, { container_id: containerId });
    expect((await dockerExec(containerId, ['ls', '/mnt/data'])).stdout).not.toContain('bye.txt');
    await expect(
      berth.client.containers.files.retrieve(f.id, { container_id: containerId }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('pages over 45 files with keyset cursors', async ({ berth, execIn }) => {
    const c = await berth.client.containers.create({ name: 'many-files' });
    await execIn(c.id, 'for i in $(seq 1 45); do echo $i > /mnt/data/f$i.txt; done');
    const seen: string[] = [];
    for await (const f of berth.client.containers.files.list(c.id, { limit: 10, order: 'asc' }))
      seen.push(f.path);
    expect(seen).toHaveLength(45);
    expect(new Set(seen).size).toBe(45);
    const desc: string[] = [];
    for await (const f of berth.client.containers.files.list(c.id, { limit: 7, order: 'desc' }))
      desc.push(f.path);
    expect(desc).toEqual([...seen].reverse());
  });

  it('copies file_ids in at create; an unknown id is 400 file_ids.N and leaves no sandbox', async ({
    berth,
  }) => {
    const a = await berth.client.files.create({
      file: await toFile(Buffer.from('A'), 'a.txt'),
      purpose: 'user_data',
    });
    const b = await berth.client.files.create({
      file: await toFile(Buffer.from('BB'), 'b.txt'),
      purpose: 'user_data',
    });
    const c = await berth.client.containers.create({ name: 'seeded', file_ids: [a.id, b.id] });
    expect((await dockerExec(c.id, ['cat', '/mnt/data/a.txt', '/mnt/data/b.txt'])).stdout).toBe(
      'ABB',
    );
    const list = await berth.client.containers.files.list(c.id);
    expect(list.data.map((f) => f.path).sort()).toEqual(['/mnt/data/a.txt', '/mnt/data/b.txt']);

    const before = (await berth.runtime.listManaged()).length;
    const error = await berth.client.containers
      .create({ name: 'bad', file_ids: [a.id, 'file-' + 'f'.repeat(32)] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).param).toBe('file_ids.1');
    expect((await berth.runtime.listManaged()).length).toBe(before);
  });

  it('answers 413 past the upload limit and leaves nothing half-written', async ({ berthWith }) => {
    const small = await berthWith({ BERTH_MAX_UPLOAD_BYTES: '1000' });
    const c = await small.client.containers.create({ name: 'limited' });
    const error = await small.client.containers.files
      .create(c.id, { file: await toFile(randomBytes(5000), 'big.bin') })
      .catch((e: unknown) => e);
    expect((error as { status?: number }).status).toBe(413);
    expect((await dockerExec(c.id, ['ls', '-A', '/mnt/data'])).stdout).toBe('');
    expect((await small.client.containers.files.list(c.id)).data).toEqual([]);
    const fileError = await small.client.files
      .create({ file: await toFile(randomBytes(5000), 'big.bin'), purpose: 'user_data' })
      .catch((e: unknown) => e);
    expect((fileError as { status?: number }).status).toBe(413);
    expect((await small.client.files.list()).data).toEqual([]);
  });

  it('answers 400 "Container is expired." for file operations on an expired container', async ({
    berth,
  }) => {
    const c = await berth.createExpired('late');
    const error = await berth.client.containers.files.list(c.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).error).toMatchObject({
      message: 'Container is expired.',
      code: 'container_expired',
    });
    expect(await inspectSandbox(c.id)).not.toBeNull();
  });
});

/** Transfers counted so far by direction and way (`upload/channel` → n). */
async function transfers(berth: RunningBerth): Promise<Record<string, number>> {
  const samples = await scrapeMetrics(berth.url, METRICS_TOKEN);
  const counts: Record<string, number> = {};
  for (const direction of ['upload', 'download'])
    for (const via of ['channel', 'stdio'])
      counts[`${direction}/${via}`] =
        samples.get(`berth_sandbox_transfers_total{direction="${direction}",via="${via}"}`) ?? 0;
  return counts;
}

/** Uploads `size` random bytes to `path` and downloads them back; the counts it added. */
async function roundTrip(berth: RunningBerth, containerId: string, path: string, size: number) {
  const before = await transfers(berth);
  const data = randomBytes(size);
  const f = await berth.client.containers.files.create(containerId, {
    file: await toFile(data, path),
  });
  const res = await berth.client.containers.files.content.retrieve(f.id, {
    container_id: containerId,
  });
  expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(data));
  const after = await transfers(berth);
  return Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - before[k]!]));
}

/** An upload's outcome as the client saw it: committed, or the error's status and code. */
async function uploadOutcome(berth: RunningBerth, containerId: string, data: Buffer) {
  const form = new FormData();
  form.append('file', new Blob([data]), 'hijacked.bin');
  const res = await berth.api(`/v1/containers/${containerId}/files`, {
    method: 'POST',
    body: form,
  });
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: body.error?.code ?? null };
}

/**
 * Sandbox code that takes the file helper's socket: it watches /proc for a helper given a socket,
 * stops it, connects in its place and reads what the service sends, then lets the helper go on.
 */
const HIJACKER = `
import os, signal, socket, time
deadline = time.time() + 20
while time.time() < deadline:
    for pid in os.listdir('/proc'):
        try:
            args = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')
        except OSError:
            continue
        name = next((a for a in args if a.endswith(b'.sock')), None)
        if not name or b'files-' not in b' '.join(args):
            continue
        os.kill(int(pid), signal.SIGSTOP)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(b'/run/berth-files/' + name)
            got = 0
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
            print('took', got)
        except OSError as e:
            print('late', e.errno)
        os.kill(int(pid), signal.SIGCONT)
        raise SystemExit(0)
print('none')
`;

describe('the files channel', () => {
  it('moves uploads and downloads over a socket of their own, and leaves none behind', async ({
    berth,
    containerId,
  }) => {
    expect(await roundTrip(berth, containerId, 'via-channel.bin', 3 * 1024 * 1024 + 7)).toEqual({
      'upload/channel': 1,
      'download/channel': 1,
      'upload/stdio': 0,
      'download/stdio': 0,
    });
    const dir = join(berth.dataDir, 'egress', 'files-channel');
    expect(statSync(dir).mode & 0o777).toBe(0o711);
    expect(readdirSync(dir)).toEqual([]);
    expect((await inspectSandbox(containerId))!.HostConfig.Mounts).toEqual([
      expect.objectContaining({
        Type: 'bind',
        Source: dir,
        Target: '/run/berth-files',
        ReadOnly: true,
      }),
    ]);
  });

  it("gives a sandbox's code no listing, no writing and no guessing in the channel", async ({
    containerId,
  }) => {
    const probe = await dockerExec(containerId, [
      'python3',
      '-c',
      `import errno, os, socket
def attempt(f):
    try:
        f(); return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
s = socket.socket(socket.AF_UNIX)
print(attempt(lambda: os.listdir('/run/berth-files')),
      attempt(lambda: open('/run/berth-files/x.sock', 'w')),
      attempt(lambda: s.connect('/run/berth-files/' + os.urandom(16).hex() + '.sock')))`,
    ]);
    expect(probe.stderr).toBe('');
    expect(probe.stdout.trim()).toMatch(/^EACCES (EROFS|EACCES) ENOENT$/);
  });

  it('answers 400 sandbox_interference when sandbox code takes the helper’s socket, and commits nothing', async ({
    berth,
    containerId,
  }) => {
    const data = randomBytes(2 * 1024 * 1024);
    const outcomes: string[] = [];
    // The hijacker usually stops the helper before it connects; when the helper wins the race,
    // the upload commits whole. Both are right; a hang, a 500 or a partial file never are.
    for (let attempt = 0; attempt < 3 && !outcomes.includes('interfered'); attempt++) {
      const hijacker = dockerExec(containerId, ['python3', '-c', HIJACKER]);
      await new Promise((r) => setTimeout(r, 300));
      const outcome = await uploadOutcome(berth, containerId, data);
      const took = (await hijacker).stdout.trim();
      const inside = await dockerExec(containerId, [
        'sh',
        '-c',
        `sha256sum /mnt/data/hijacked.bin; rm -f /mnt/data/hijacked.bin`,
      ]);
      if (outcome.status === 200) {
        expect(inside.stdout.split(' ')[0]).toBe(sha(data));
        outcomes.push('committed');
      } else {
        expect(outcome).toEqual({ status: 400, code: 'sandbox_interference' });
        expect(took).toMatch(/^took \d+$/);
        expect(inside.stdout).toBe('');
        outcomes.push('interfered');
      }
    }
    expect(outcomes).toContain('interfered');
    // The sandbox is still usable, over the channel.
    expect((await roundTrip(berth, containerId, 'after-hijack.bin', 1000))['upload/channel']).toBe(
      1,
    );
  });

  it('falls back to stdio for a sandbox made without the channel; BERTH_FILES_CHANNEL=0 mounts none', async ({
    deployment,
    berthWith,
  }) => {
    const env = { ...deployment.env, BERTH_METRICS_TOKEN: METRICS_TOKEN };
    const off = await berthWith({ ...env, BERTH_FILES_CHANNEL: '0' }, { keepSandboxes: true });
    const c = await off.client.containers.create({ name: 'no-channel' });
    expect((await inspectSandbox(c.id))!.HostConfig.Mounts ?? []).toEqual([]);
    const stdio = {
      'upload/channel': 0,
      'download/channel': 0,
      'upload/stdio': 1,
      'download/stdio': 1,
    };
    expect(await roundTrip(off, c.id, 'off.bin', 1024 * 1024)).toEqual(stdio);
    await off[Symbol.asyncDispose]();
    // A build with the channel, serving the same sandbox: its helper finds no socket and says so.
    const on = await berthWith(env);
    expect(await roundTrip(on, c.id, 'on.bin', 1024 * 1024)).toEqual(stdio);
    expect((await on.client.containers.files.list(c.id)).data.map((f) => f.path).sort()).toEqual([
      '/mnt/data/off.bin',
      '/mnt/data/on.bin',
    ]);
  });
});
