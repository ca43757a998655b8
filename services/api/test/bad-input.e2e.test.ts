import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { containerTest } from './fixtures.js';

/** A 4xx in OpenAI's envelope; returns the error for more checks. */
async function expectEnvelope(res: Response, status: number) {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  const body = JSON.parse(text) as { error: Record<string, unknown> };
  expect(body.error).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

const BOUNDARY = 'berthboundary';
const multipartType = `multipart/form-data; boundary=${BOUNDARY}`;
const filePart = (disposition: string, content = 'payload') =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\n` +
  `Content-Type: text/plain\r\n\r\n${content}\r\n`;
const fieldPart = (name: string, value: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const end = `--${BOUNDARY}--\r\n`;

/** Sends bytes as they are and reads the reply until the server closes. */
function rawTo(
  url: string,
  request: string | Buffer,
): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), head, body });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    socket.end(request);
  });
}

const it = containerTest('bad-input')
  .extend(
    'postMultipart',
    { scope: 'file' },
    ({ berth }) =>
      (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
        berth.api(path, {
          method: 'POST',
          headers: { 'content-type': multipartType, ...headers },
          body,
        }),
  )
  .extend(
    'blobs',
    { scope: 'file' },
    ({ berth }) =>
      () =>
        readdirSync(join(berth.dataDir, 'files')),
  )
  .extend(
    'filesListed',
    { scope: 'file' },
    ({ berth }) =>
      async () =>
        (await berth.client.files.list()).data,
  )
  .extend(
    'mntData',
    { scope: 'file' },
    ({ containerId }) =>
      async () =>
        (await dockerExec(containerId, ['ls', '-A', '/mnt/data'])).stdout
          .split('\n')
          .filter(Boolean),
  )
  .extend(
    'raw',
    { scope: 'file' },
    ({ berth }) =>
      (request: string | Buffer) =>
        rawTo(berth.url, request),
  );

describe('bad input answers a 4xx in the envelope, never a 500', () => {
  it.for([
    ['/v1/containers/%ZZ'],
    ['/v1/files/%ZZ'],
    ['/v1/files/%E0%A4%A/content'],
    [`/v1/containers/%ZZ/files`],
    [`/v1/containers/cntr_x/files/%C0%AF`],
  ] as const)(
    'refuses the malformed percent-escape in %s with a 400',
    async ([path], { berth }) => {
      const error = await expectEnvelope(await berth.api(path), 400);
      expect(error.message).toMatch(/percent-encoding/);
    },
  );

  it('refuses a multipart body without a boundary', async ({ berth }) => {
    const res = await berth.api('/v1/files', {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data' },
      body: filePart('filename="a.txt"'),
    });
    expect((await expectEnvelope(res, 400)).message).toBe('Malformed multipart body.');
  });

  it.for([
    ['/v1/files', 'the Files API'],
    ['/v1/containers/{id}/files', 'container files'],
  ] as const)(
    'refuses a cut-off multipart body to %s (%s)',
    async ([path], { containerId, postMultipart, mntData }) => {
      const res = await postMultipart(
        path.replace('{id}', containerId),
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n\r\nhalf a fi`,
      );
      expect((await expectEnvelope(res, 400)).message).toBe('Malformed multipart body.');
      expect(await mntData()).not.toContain('cut.txt');
    },
  );

  it('refuses a malformed part header', async ({ postMultipart }) => {
    const res = await postMultipart(
      '/v1/files',
      `--${BOUNDARY}\r\nno colon here\r\n\r\nx\r\n${end}`,
    );
    expect((await expectEnvelope(res, 400)).message).toBe('Malformed multipart body.');
  });

  it.for([
    ['/v1/files', 'Files API'],
    ['/v1/containers/{id}/files', 'container files'],
  ] as const)(
    'refuses a raw NUL in filename at %s (%s) with a 400, storing nothing',
    async ([path], { containerId, postMultipart, blobs, mntData }) => {
      const body = `${fieldPart('purpose', 'assistants')}${filePart('filename="nul\0b.txt"')}${end}`;
      await expectEnvelope(await postMultipart(path.replace('{id}', containerId), body), 400);
      expect(blobs()).toEqual([]);
      expect((await mntData()).filter((n) => n.startsWith('nul'))).toEqual([]);
    },
  );

  it('refuses a NUL in filename* with a 400 naming file, storing nothing', async ({
    postMultipart,
    blobs,
  }) => {
    const body = `${fieldPart('purpose', 'assistants')}${filePart("filename*=UTF-8''a%00b.txt")}${end}`;
    const res = await postMultipart('/v1/files', body);
    expect((await expectEnvelope(res, 400)).param).toBe('file');
    expect(blobs()).toEqual([]);
  });

  it('refuses a corrupt gzip JSON body with a 400', async ({ berth }) => {
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: Buffer.concat([gzipSync('{"name":"x"}').subarray(0, 12), Buffer.from('garbage')]),
    });
    expect((await expectEnvelope(res, 400)).message).toMatch(/decompressed/);
  });

  it('refuses an unknown Content-Encoding with a 415', async ({ berth }) => {
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'x-bogus' },
      body: '{"name":"x"}',
    });
    await expectEnvelope(res, 415);
  });

  it('refuses a gzip-encoded multipart upload with a 415', async ({ postMultipart, blobs }) => {
    const body = gzipSync(
      `${fieldPart('purpose', 'assistants')}${filePart('filename="z.txt"')}${end}`,
    );
    await expectEnvelope(
      await postMultipart('/v1/files', body, { 'content-encoding': 'gzip' }),
      415,
    );
    expect(blobs()).toEqual([]);
  });

  it('refuses a NUL in a container name with a 400 naming name', async ({ berth }) => {
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'a\u0000b' }),
    });
    expect((await expectEnvelope(res, 400)).param).toBe('name');
  });

  it.for([
    ['/v1/containers?name=a%00b', 'name'],
    ['/v1/files?purpose=a%00b', 'purpose'],
  ] as const)('refuses the NUL in %s with a 400 naming %s', async ([path, param], { berth }) => {
    expect((await expectEnvelope(await berth.api(path), 400)).param).toBe(param);
  });

  it('answers oversized headers with a 431 in the envelope', async ({ raw }) => {
    const { status, head, body } = await raw(
      `GET /v1/containers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(status).toBe(431);
    expect(head).toMatch(/content-type: application\/json/i);
    expect(head).toMatch(/connection: close/i);
    expect(JSON.parse(body).error).toMatchObject({ type: 'invalid_request_error' });
  });

  it.for([
    ['a bad method', 'G@T /v1/containers HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'Transfer-Encoding with Content-Length',
      'POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a bare LF header', 'GET / HTTP/1.1\r\nHost: x\nX: \x01\r\n\r\n'],
  ] as const)('answers %s with a 400 in the envelope', async ([_name, request], { raw }) => {
    const { status, body } = await raw(request);
    expect(status).toBe(400);
    expect(JSON.parse(body).error).toMatchObject({ type: 'invalid_request_error' });
  });

  it('leaves no blob and no file behind when a Files API upload has two file parts', async ({
    postMultipart,
    blobs,
    filesListed,
  }) => {
    const body = `${fieldPart('purpose', 'assistants')}${filePart('filename="one.txt"')}${filePart('filename="two.txt"')}${end}`;
    expect((await expectEnvelope(await postMultipart('/v1/files', body), 400)).param).toBe('file');
    expect(blobs()).toEqual([]);
    expect(await filesListed()).toEqual([]);
  });

  it('leaves nothing in /mnt/data when a container upload has two file parts', async ({
    berth,
    containerId,
    postMultipart,
    mntData,
  }) => {
    const body = `${filePart('filename="first.txt"')}${filePart('filename="second.txt"')}${end}`;
    const res = await postMultipart(`/v1/containers/${containerId}/files`, body);
    expect((await expectEnvelope(res, 400)).param).toBe('file');
    expect(await mntData()).not.toContain('first.txt');
    const listed = await berth.client.containers.files.list(containerId);
    expect(listed.data.map((f) => f.path)).not.toContain('/mnt/data/first.txt');
  });

  it('leaves nothing in /mnt/data when the form breaks after the file was stored', async ({
    containerId,
    postMultipart,
    mntData,
  }) => {
    const body = `${filePart('filename="stored.txt"')}--${BOUNDARY}\r\nno colon\r\n\r\nx`;
    const res = await postMultipart(`/v1/containers/${containerId}/files`, body);
    await expectEnvelope(res, 400);
    expect(await mntData()).not.toContain('stored.txt');
  });

  it.for([
    ['a/b.txt'],
    ['..'],
    ['../up.txt'],
    ['a\\b.txt'],
    ['%2e%2e'],
    ['x'.repeat(1000)],
    ['tab\there'],
  ] as const)(
    'refuses the Files API filename %j with a 400 naming file, storing nothing',
    async ([name], { berth, blobs, filesListed }) => {
      const form = new FormData();
      form.append('purpose', 'assistants');
      form.append('file', new Blob(['x']), name);
      const res = await berth.api('/v1/files', { method: 'POST', body: form });
      expect((await expectEnvelope(res, 400)).param).toBe('file');
      expect(blobs()).toEqual([]);
      expect(await filesListed()).toEqual([]);
    },
  );

  it('still takes a plain unusual Files API filename', async ({ berth }) => {
    const form = new FormData();
    form.append('purpose', 'assistants');
    form.append('file', new Blob(['x']), 'report..v2 (ü) 100%.txt');
    const res = await berth.api('/v1/files', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const file = (await res.json()) as { id: string; filename: string };
    expect(file.filename).toBe('report..v2 (ü) 100%.txt');
    await berth.client.files.delete(file.id);
  });
});
