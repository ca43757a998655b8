import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { berthTest, type RunningBerth } from './fixtures.js';
import {
  fromSchema,
  jsonBodies,
  multipartBodies,
  mutate,
  nastyString,
  pathSegment,
  sibling,
  queryStrings,
  type Body,
  type JsonSchema,
} from './fuzz-arbitraries.js';

/**
 * Schema-driven fuzz of every operation in the service's own OpenAPI document. Properties: no
 * 5xx, every 4xx in the envelope, and afterwards the process is healthy and its memory bounded.
 * `pnpm test` runs a bounded budget; `pnpm fuzz` (FUZZ_RUNS) runs longer.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 800);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
/** Valid creates start a real sandbox (~0.3 s each): a few prove the path, more only cost time. */
const MAX_CREATES = Math.max(3, Math.ceil(RUNS / 400));
/** Headroom over the RSS measured after start-up, for a run of any length. */
const RSS_HEADROOM_BYTES = 400 * 1024 * 1024;

interface Operation {
  id: string;
  method: string;
  path: string;
  pathParams: string[];
  query: { name: string; schema: JsonSchema }[];
  json?: JsonSchema;
  multipart?: JsonSchema;
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  bytes?: Buffer;
}
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** What the run saw, reported when the file ends. */
const run = { baselineRss: 0, peakRss: 0, finalRss: 0, creates: 0 };
const statuses = new Map<number, number>();
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/**
 * One request. A keep-alive socket the server closed as idle just as it was reused resets: that
 * race is the client's (Node's docs retry it), so such a request is sent once more on a new socket.
 */
function send(berth: RunningBerth, sent: Sent, retry = true): Promise<Answer> {
  const { hostname, port } = new URL(berth.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method: sent.method,
        path: sent.path,
        agent,
        headers: {
          authorization: `Bearer ${berth.apiKey}`,
          ...sent.headers,
          ...(sent.bytes ? { 'content-length': String(sent.bytes.length) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer in 30 s: ${sent.method} ${sent.path}`)),
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && error.code === 'ECONNRESET') {
        send(berth, sent, false).then(resolve, reject);
      } else reject(error);
    });
    req.end(sent.bytes);
  });
}

/** The property every answer must have; returns a description of what is wrong, or null. */
function violation(answer: Answer): string | null {
  if (answer.status >= 500) return `status ${answer.status}`;
  if (answer.status < 400) return null;
  let body: unknown;
  try {
    body = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return `a ${answer.status} that is not JSON`;
  }
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (
    !error ||
    typeof error.message !== 'string' ||
    typeof error.type !== 'string' ||
    !(error.param === null || typeof error.param === 'string') ||
    !(error.code === null || typeof error.code === 'string') ||
    Object.keys(error).length !== 4
  )
    return `a ${answer.status} outside the envelope`;
  if (!/json/.test(String(answer.headers['content-type']))) return 'an envelope not typed JSON';
  return null;
}

/** Cleans up what a valid request made, so the run leaves the project as it found it. */
async function undoCreated(
  berth: RunningBerth,
  ids: Record<string, string[]>,
  op: Operation,
  answer: Answer,
): Promise<void> {
  if (answer.status !== 200 || !op.id.startsWith('Create') || op.id.endsWith('Exec')) return;
  const made = JSON.parse(answer.body.toString('utf8')) as { id?: string };
  if (!made.id) return;
  if (op.id === 'CreateContainer')
    await berth.api(`/v1/containers/${made.id}`, { method: 'DELETE' });
  if (op.id === 'CreateFile') await berth.api(`/v1/files/${made.id}`, { method: 'DELETE' });
  if (op.id === 'CreateContainerFile') {
    await berth.api(`/v1/containers/${ids.container_id![0]}/files/${made.id}`, {
      method: 'DELETE',
    });
  }
}

function readOperations(doc: { paths: Record<string, Record<string, unknown>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const shared = (item.parameters ?? []) as { name: string; in: string }[];
    for (const method of ['get', 'post', 'delete']) {
      const op = item[method] as
        | {
            operationId: string;
            parameters?: { name: string; in: string; schema: JsonSchema }[];
            requestBody?: { content: Record<string, { schema: JsonSchema }> };
          }
        | undefined;
      if (!op) continue;
      const content = op.requestBody?.content ?? {};
      ops.push({
        id: op.operationId,
        method: method.toUpperCase(),
        path: `/v1${path}`,
        pathParams: shared.filter((p) => p.in === 'path').map((p) => p.name),
        query: (op.parameters ?? []).filter((p) => p.in === 'query'),
        ...(content['application/json'] ? { json: content['application/json'].schema } : {}),
        ...(content['multipart/form-data']
          ? { multipart: content['multipart/form-data'].schema }
          : {}),
      });
    }
  }
  return ops;
}

/** Exec bodies that are valid run only quick, harmless commands in the fixture sandbox. */
const safeExec = fc.record(
  {
    command: fc.constantFrom('true', ['echo', 'fuzz'], 'exit 3', ['cat'], ['ls', '/mnt/data']),
    stdin: fc.string({ maxLength: 64 }),
    timeout_ms: fc.integer({ min: 1, max: 3000 }),
    stream: fc.boolean(),
    workdir: fc.constantFrom('/mnt/data', '/tmp', '/nonexistent', 'relative'),
    env: fc.dictionary(fc.stringMatching(/^[A-Z_]{1,6}$/), fc.string({ maxLength: 8 }), {
      maxKeys: 2,
    }),
  },
  { requiredKeys: ['command'] },
);

/** One request for an operation: path ids, query and body drawn from its schema. */
function requestFor(ids: Record<string, string[]>, op: Operation): fc.Arbitrary<Sent> {
  const segments = fc.tuple(
    ...op.pathParams.map((name, i) => {
      const valid = ids[`${op.path}:${name}`] ?? ids[name] ?? ['x'];
      // A delete of the seed objects would leave the rest of the run only 404s to explore.
      const deletes = op.method === 'DELETE' && i === op.pathParams.length - 1;
      return pathSegment(deletes ? valid.map(sibling) : valid);
    }),
  );
  const query = op.query.length
    ? fc.option(queryStrings(op.query), { nil: undefined })
    : fc.constant(undefined);
  let bodies: fc.Arbitrary<Body | undefined> = fc.constant(undefined);
  if (op.id === 'CreateContainerExec') bodies = jsonBodies(safeExec);
  else if (op.json && op.multipart) {
    bodies = fc.oneof(jsonBodies(fromSchema(op.json)), multipartBodies({ path: nastyString }));
  } else if (op.json) {
    const valid =
      op.id === 'CreateContainer'
        ? fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }) }, { requiredKeys: [] })
        : fromSchema(op.json);
    bodies = fc.oneof(
      { weight: 1, arbitrary: jsonBodies(valid) },
      { weight: 2, arbitrary: jsonBodies(fromSchema(op.json).chain(mutate)) },
    );
  } else if (op.multipart) {
    bodies = multipartBodies({
      purpose: fc.oneof(fc.constantFrom('assistants', 'user_data', 'batch'), nastyString),
    });
  } else {
    // Bodies where none is expected are ignored, or refused; never a 500.
    bodies = fc.option(jsonBodies(fc.jsonValue()), { nil: undefined, freq: 4 });
  }
  return fc.tuple(segments, query, bodies).map(([segs, q, body]) => {
    let path = op.path;
    op.pathParams.forEach((name, i) => {
      path = path.replace(`{${name}}`, segs[i]!);
    });
    return {
      method: op.method,
      path: q ? `${path}?${q}` : path,
      headers: body?.headers ?? {},
      ...(body ? { bytes: body.bytes } : {}),
    };
  });
}

const it = berthTest({ BERTH_EXEC_TIMEOUT_MS: '3000' })
  // The operations of the service's own document, and a container and files for their path ids.
  .extend('seed', { scope: 'file' }, async ({ berth }, { onCleanup }) => {
    onCleanup(() => {
      agent.destroy();
      console.log(
        `fuzz: ${[...statuses.values()].reduce((a, b) => a + b, 0)} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}, ` +
          `${run.creates} containers created, RSS baseline ${(run.baselineRss / 2 ** 20).toFixed(0)} MiB, peak ${(run.peakRss / 2 ** 20).toFixed(0)} MiB, at the end ${(run.finalRss / 2 ** 20).toFixed(0)} MiB`,
      );
    });
    const doc = (await (await fetch(`${berth.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = readOperations(doc);
    const container = await berth.client.containers.create({ name: 'fuzz' });
    const form = new FormData();
    form.append('purpose', 'assistants');
    form.append('file', new Blob(['fuzz']), 'seed.txt');
    const file = (await (await berth.api('/v1/files', { method: 'POST', body: form })).json()) as {
      id: string;
    };
    const cform = new FormData();
    cform.append('file', new Blob(['fuzz']), 'seed.txt');
    const cfile = (await (
      await berth.api(`/v1/containers/${container.id}/files`, { method: 'POST', body: cform })
    ).json()) as { id: string };
    const ids = {
      container_id: [container.id],
      // Which file a `{file_id}` names depends on the path it is in.
      '/v1/files/{file_id}:file_id': [file.id],
      '/v1/files/{file_id}/content:file_id': [file.id],
      file_id: [cfile.id],
    };
    run.baselineRss = process.memoryUsage().rss;
    return { operations, ids };
  });
it.beforeAll(async ({ seed: _ }) => {});

describe('fuzz: every operation of the OpenAPI document', () => {
  it('reads every operation from the document', ({ seed: { operations } }) => {
    expect(operations.map((o) => o.id)).toEqual(
      expect.arrayContaining(['CreateContainer', 'CreateFile', 'CreateContainerFile', 'ListFiles']),
    );
    expect(operations.length).toBeGreaterThanOrEqual(14);
  });

  it(
    'never answers 5xx, and every 4xx is the error envelope',
    async ({ berth, seed: { operations, ids } }) => {
      const arbitrary = fc.oneof(
        ...operations.map((op) => requestFor(ids, op).map((sent) => ({ op, sent }))),
      );
      await fc.assert(
        fc.asyncProperty(arbitrary, async ({ op, sent }) => {
          if (op.id === 'CreateContainer' && run.creates >= MAX_CREATES) {
            // Past the budget, the same body with a NUL in its name: refused before Docker.
            sent = {
              ...sent,
              headers: { 'content-type': 'application/json' },
              bytes: Buffer.from('{"name":"\\u0000"}'),
            };
          }
          const answer = await send(berth, sent);
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (op.id === 'CreateContainer' && answer.status === 200) run.creates += 1;
          await undoCreated(berth, ids, op, answer);
          run.peakRss = Math.max(run.peakRss, process.memoryUsage().rss);
          const wrong = violation(answer);
          if (wrong) {
            throw new Error(
              `${wrong} for ${sent.method} ${sent.path.slice(0, 300)} ${JSON.stringify(sent.headers)} ` +
                `body ${JSON.stringify(sent.bytes?.subarray(0, 300).toString('latin1'))}: ${answer.body.subarray(0, 500).toString()}`,
            );
          }
        }),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: false },
      );
    },
    Math.max(120_000, RUNS * 200),
  );

  it('answers what Node’s parser refuses with the envelope, on a raw socket', async ({ berth }) => {
    const { hostname, port } = new URL(berth.url);
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname);
        const chunks: Buffer[] = [];
        const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
        // The socket is not half-closed after the request: Node answers nothing to a client whose
        // side ended before the answer was written. A whole answer (head + Content-Length bytes)
        // is enough; a refused request is also answered with `Connection: close`.
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          const text = Buffer.concat(chunks).toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          const length = /^content-length: (\d+)/im.exec(text.slice(0, end));
          if (end >= 0 && length && Buffer.byteLength(text) - end - 4 >= Number(length[1])) {
            socket.destroy();
            done();
          }
        });
        socket.on('error', reject);
        socket.on('close', done);
        socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
        socket.write(bytes);
      });
    const malformed = fc.oneof(
      fc
        .integer({ min: 17_000, max: 200_000 })
        .map((n) => `GET /v1/containers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(n)}\r\n\r\n`),
      fc
        .integer({ min: 200, max: 2000 })
        .map(
          (n) =>
            `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${Array.from({ length: n }, (_, i) => `X-${i}: ${'v'.repeat(40)}`).join('\r\n')}\r\n\r\n`,
        ),
      fc
        .stringMatching(/^[A-Z]{0,4}[@(),/:;<=>?[\]{} ][A-Z]{0,4}$/)
        .map((method) => `${method} /v1/containers HTTP/1.1\r\nHost: x\r\n\r\n`),
      fc
        .constantFrom('chunked', 'chunked, identity', 'gzip, chunked', ' chunked')
        .map(
          (te) =>
            `POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`,
        ),
      fc.constantFrom(
        'POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
        'GET /v1/containers HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n',
        'GET /v1/containers HTTP/9.9\r\nHost: x\r\n\r\n',
        'POST /v1/containers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        'GET /v1/cont ainers HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    );
    await fc.assert(
      fc.asyncProperty(malformed, async (bytes) => {
        const reply = await raw(bytes);
        const [head = '', body = ''] = reply.split('\r\n\r\n');
        const status = Number(head.split(' ')[1]);
        expect(status).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        expect(head).toMatch(/^content-type: application\/json/im);
        expect(JSON.parse(body).error).toMatchObject({ type: 'invalid_request_error' });
      }),
      { numRuns: Math.max(60, Math.ceil(RUNS / 20)) },
    );
  });

  it('is healthy afterwards, with memory bounded', async ({ berth }) => {
    const health = await fetch(`${berth.url}/healthz`);
    expect(health.status).toBe(200);
    const rss = process.memoryUsage().rss;
    run.finalRss = rss;
    expect(rss - run.baselineRss).toBeLessThan(RSS_HEADROOM_BYTES);
    // Everything the fuzz made valid was removed again: one seed file each.
    expect((await berth.client.files.list()).data).toHaveLength(1);
    expect(
      (await berth.client.containers.list()).data.filter((c) => c.status === 'running'),
    ).toHaveLength(1);
  });
});
