import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { containerTest, errorOf } from './fixtures.js';

const it = containerTest('hostile')
  /** As the sandboxed code would: a shell in the sandbox, as its user. */
  .extend(
    'inside',
    { scope: 'file' },
    ({ containerId }) =>
      (script: string) =>
        dockerExec(containerId, ['sh', '-c', script]),
  )
  .extend(
    'uploadTo',
    { scope: 'file' },
    ({ berth, containerId }) =>
      async (path: string | undefined, name: string, content = 'payload'): Promise<Response> => {
        const form = new FormData();
        if (path !== undefined) form.append('path', path);
        form.append('file', new Blob([content]), name);
        return berth.api(`/v1/containers/${containerId}/files`, { method: 'POST', body: form });
      },
  )
  .extend(
    'listPaths',
    { scope: 'file' },
    ({ berth, containerId }) =>
      async () =>
        (await berth.client.containers.files.list(containerId, { limit: 100 })).data.map(
          (f) => f.path,
        ),
  );

describe('path safety', () => {
  it.for([
    ['../escape.txt'],
    ['/mnt/data/../../etc/x'],
    ['%2e%2e/escape.txt'],
    ['/etc/passwd'],
    ['/mnt/database/x'],
    ['a\u0000b'],
    [`${'x'.repeat(300)}/f`],
    [`${'d/'.repeat(2100)}f`],
  ] as const)('refuses the upload path %j with a 400 naming it', async ([path], { uploadTo }) => {
    const res = await uploadTo(path, 'f.txt');
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({
      type: 'invalid_request_error',
      param: 'path',
    });
  });

  it.for([['../../etc/evil.txt'], ['..'], ['%2e%2e'], ['a\\b'], ['x'.repeat(256)]] as const)(
    'refuses the file name %j with a 400 instead of rewriting it',
    async ([name], { inside, uploadTo }) => {
      const res = await uploadTo(undefined, name);
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ param: 'file' });
      expect((await inside('ls -A /mnt/data; ls /etc | grep -c evil || true')).stdout).not.toMatch(
        /evil\.txt\n/,
      );
    },
  );

  it('takes an unusual but plain file name literally', async ({ uploadTo }) => {
    const res = await uploadTo(undefined, '100% done (ü).txt');
    expect(((await res.json()) as { path: string }).path).toBe('/mnt/data/100% done (ü).txt');
  });

  it('never lists or serves symlinks made inside the sandbox, to files or directories', async ({
    inside,
    listPaths,
  }) => {
    await inside(
      'ln -s /etc/passwd /mnt/data/passwd-link; ln -s /proc/1/environ /mnt/data/environ-link; ln -s /etc /mnt/data/etc-dir; echo real > /mnt/data/real.txt',
    );
    const paths = await listPaths();
    expect(paths).toContain('/mnt/data/real.txt');
    expect(paths.filter((p) => /link|etc-dir/.test(p))).toEqual([]);
  });

  it('replaces a symlink on upload instead of writing through it', async ({ inside, uploadTo }) => {
    await inside('ln -sf /tmp/target /mnt/data/through.txt; echo original > /tmp/target');
    const res = await uploadTo(undefined, 'through.txt', 'new content');
    expect(res.status).toBe(200);
    expect(
      (await inside('cat /tmp/target; test -L /mnt/data/through.txt && echo LINK || echo FILE'))
        .stdout,
    ).toBe('original\nFILE\n');
  });

  it('does not write through a directory symlink in the upload path', async ({
    inside,
    uploadTo,
  }) => {
    await inside('mkdir -p /tmp/outside; ln -sfn /tmp/outside /mnt/data/linkdir');
    const res = await uploadTo('linkdir/', 'x.txt');
    expect(res.status).toBe(400);
    expect((await inside('ls -A /tmp/outside')).stdout).toBe('');
  });

  it('answers 400 for an upload onto a directory, and leaves no temporary file beside it', async ({
    inside,
    uploadTo,
  }) => {
    await inside('mkdir -p /mnt/data/taken/inner');
    const res = await uploadTo(undefined, 'taken');
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ param: 'path' });
    // Written in full, the upload could not take its name: nothing of it stays.
    expect((await inside('ls -A /mnt/data | grep -c berth-upload || true')).stdout).toBe('0\n');
    expect((await inside('ls -A /mnt/data/taken')).stdout).toBe('inner\n');
  });

  it('does not leak a file replaced by a symlink between listing and download', async ({
    berth,
    containerId,
    inside,
    listPaths,
  }) => {
    const f = await berth.client.containers.files.create(containerId, {
      file: await toFile(Buffer.from('innocent'), 'swap.txt'),
    });
    expect(await listPaths()).toContain('/mnt/data/swap.txt');
    await inside('rm /mnt/data/swap.txt && ln -s /etc/passwd /mnt/data/swap.txt');
    const res = await berth.api(`/v1/containers/${containerId}/files/${f.id}/content`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('root:');
  });

  it('does not follow a parent directory swapped for a symlink', async ({
    berth,
    containerId,
    inside,
    uploadTo,
  }) => {
    const res = await uploadTo('deep/', 'f.txt', 'inside');
    const { id } = (await res.json()) as { id: string };
    await inside(
      'mv /mnt/data/deep /mnt/data/deep-moved && mkdir -p /tmp/fake && echo leaked > /tmp/fake/f.txt && ln -s /tmp/fake /mnt/data/deep',
    );
    const down = await berth.api(`/v1/containers/${containerId}/files/${id}/content`);
    expect(down.status).toBe(404);
    expect(await down.text()).not.toContain('leaked');
  });

  it('answers 404 for file ids that are malformed or of another container', async ({
    berth,
    containerId,
  }) => {
    const other = await berth.client.containers.create({ name: 'other' });
    const f = await berth.client.containers.files.create(other.id, {
      file: await toFile(Buffer.from('mine'), 'mine.txt'),
    });
    for (const id of [f.id, 'cfile_..%2f..%2fetc', 'nope']) {
      const res = await berth.api(
        `/v1/containers/${containerId}/files/${encodeURIComponent(id)}/content`,
      );
      expect(res.status).toBe(404);
    }
  });
});
