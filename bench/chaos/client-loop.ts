import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { NotFoundError, toFile } from 'openai';
import { HttpStatusError, WrongAnswer, type Tally } from './tally.js';

/** Every request is bounded; a timeout is an error kind of its own. */
export const REQUEST_TIMEOUT_MS = 60_000;
const FILE_BYTES = 1024 * 1024;

/** A Files API upload the service acknowledged with 200: it must be downloadable at the end. */
export interface AckedFile {
  id: string;
  sha256: string;
}

export interface LoopResults {
  acked: AckedFile[];
  iterations: number;
  completed: number;
  containersCreated: number;
  containersDeleted: number;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const opts = () => ({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });

export function chaosClient(url: string, apiKey: string): OpenAI {
  return new OpenAI({
    apiKey,
    baseURL: `${url}/v1`,
    maxRetries: 0,
    timeout: REQUEST_TIMEOUT_MS,
  });
}

/**
 * One client: create → exec → upload (container and Files API) → download both → delete, until
 * `stopAt`. Failures are counted and the loop goes on; an iteration that started finishes.
 */
export async function clientLoop(options: {
  index: number;
  url: string;
  apiKey: string;
  stopAt: () => number;
  tally: Tally;
  results: LoopResults;
}): Promise<void> {
  const { tally, results, url, apiKey } = options;
  const client = chaosClient(url, apiKey);
  for (let n = 0; Date.now() < options.stopAt(); n++) {
    results.iterations += 1;
    const ok = await iteration(client, tally, results, url, apiKey, `chaos-${options.index}-${n}`);
    if (ok) results.completed += 1;
    // Connection refused comes back at once; don't turn an outage into a busy loop.
    else await sleep(300);
  }
}

async function iteration(
  client: OpenAI,
  tally: Tally,
  results: LoopResults,
  url: string,
  apiKey: string,
  name: string,
): Promise<boolean> {
  const container = await tally.call('containers.create', () =>
    client.containers.create({ name }, opts()),
  );
  if (!container) return false;
  results.containersCreated += 1;
  let ok = true;
  try {
    ok &&= await tally
      .call('containers.exec', async () => {
        const res = await fetch(`${url}/v1/containers/${container.id}/exec`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ command: ['python3', '-c', 'print(1)'] }),
          ...opts(),
        });
        const body = (await res.json()) as {
          error?: { code?: string | null; type?: string };
          exit_code?: number;
          stdout?: string;
        };
        if (!res.ok)
          throw new HttpStatusError(res.status, body.error?.code ?? body.error?.type ?? null);
        if (body.exit_code !== 0 || body.stdout !== '1\n')
          throw new WrongAnswer('exec output', JSON.stringify(body).slice(0, 200));
      })
      .then((r) => r !== null);

    const inContainer = randomBytes(FILE_BYTES);
    const cfile = await tally.call('containers.files.create', async () =>
      client.containers.files.create(
        container.id,
        { file: await toFile(inContainer, 'chaos.bin') },
        opts(),
      ),
    );
    const inFiles = randomBytes(FILE_BYTES);
    const file = await tally.call('files.create', async () =>
      client.files.create(
        { file: await toFile(inFiles, 'chaos.bin'), purpose: 'user_data' },
        opts(),
      ),
    );
    if (file) results.acked.push({ id: file.id, sha256: sha256(inFiles) });
    ok &&= cfile !== null && file !== null;

    if (cfile) {
      const expected = sha256(inContainer);
      ok &&=
        (await tally.call('containers.files.content', async () => {
          const res = await client.containers.files.content.retrieve(
            cfile.id,
            { container_id: container.id },
            opts(),
          );
          const got = sha256(new Uint8Array(await res.arrayBuffer()));
          if (got !== expected)
            throw new WrongAnswer('container file bytes', `${cfile.id}: ${got} != ${expected}`);
        })) !== null;
    }
    if (file) {
      const expected = sha256(inFiles);
      ok &&=
        (await tally.call('files.content', async () => {
          const res = await client.files.content(file.id, opts());
          const got = sha256(new Uint8Array(await res.arrayBuffer()));
          if (got !== expected)
            throw new WrongAnswer('file bytes', `${file.id}: ${got} != ${expected}`);
        })) !== null;
    }
  } finally {
    // A few tries: a container left behind is allowed, but fewer make the end state easier to read.
    for (let attempt = 0; attempt < 3; attempt++) {
      let gone = false;
      const deleted = await tally.call('containers.delete', () =>
        client.containers.delete(container.id, opts()).then(
          () => true,
          (error: unknown) => {
            gone = error instanceof NotFoundError;
            throw error;
          },
        ),
      );
      if (deleted) {
        results.containersDeleted += 1;
        break;
      }
      ok = false;
      if (gone) break;
      await sleep(2000);
    }
  }
  return ok;
}
