import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { scrapeMetrics, test as it, until, type RunningBerth } from './fixtures.js';

/**
 * A sandbox that runs commands again and again keeps a standby supervisor; its execs are handed
 * to it instead of costing a Docker exec each (docs/exec.md).
 */
const exec = async (berth: RunningBerth, id: string, body: unknown) => {
  const res = await berth.postJson(`/v1/containers/${id}/exec`, body);
  expect(res.status).toBe(200);
  return (await res.json()) as { exit_code: number; stdout: string; stderr: string; id: string };
};

/** The sandbox's waiting standbys, as `ps` inside it sees them. */
const standbys = async (id: string) =>
  (await dockerExec(id, ['ps', '-eo', 'args'])).stdout
    .split('\n')
    .filter((line) => line.trim() === '/usr/local/bin/berth-supervisor standby').length;

/** The settings every test here starts Berth with: a metrics token, to read the standby gauge. */
const TOKEN = 'metrics-token-for-standbys';
const settings = (env: Record<string, string> = {}) => ({ BERTH_METRICS_TOKEN: TOKEN, ...env });

const scrape = (berth: RunningBerth) => scrapeMetrics(berth.url, TOKEN);

/** The API's own count of waiting standbys (its map, not `ps`: a process can die before its stream ends). */
const counted = async (berth: RunningBerth, n: number) =>
  (await scrape(berth)).get('berth_exec_standbys') === n;

/** How long a standby may take to start, or to be seen gone. */
const WAIT_MS = 20_000;

/** Waits until `ps` in the sandbox and the API's gauge both see `n` standbys. */
const standbysSeen = (berth: RunningBerth, id: string, n: number, what: string) =>
  until(async () => (await standbys(id)) === n && (await counted(berth, n)), what, WAIT_MS);

/** Two commands, the second of which earns the sandbox a standby; resolves once it waits. */
async function warmUp(berth: RunningBerth, id: string): Promise<void> {
  await exec(berth, id, { command: 'true' });
  expect(await standbys(id)).toBe(0);
  await exec(berth, id, { command: 'true' });
  await standbysSeen(berth, id, 1, 'a standby');
}

/** Bytes as a `printf` format that writes them back (every byte as `\\ooo`). */
const printfBytes = (...parts: (string | number)[]) =>
  [
    ...Buffer.concat(
      parts.map((part) =>
        typeof part === 'number' ? Buffer.from([part]) : Buffer.from(part, 'utf8'),
      ),
    ),
  ]
    .map((b) => `\\${b.toString(8).padStart(3, '0')}`)
    .join('');

/** A standby frame: its 4-byte length (under 256 here), then the fields, each NUL-terminated. */
const frame = (...fields: string[]) => {
  const body = fields.map((f) => `${f}\0`).join('');
  return [0, 0, 0, Buffer.byteLength(body), body];
};

/** Docker's exec create for the sandbox of container `id`. */
const execCreate = (id: string) => (r: { method: string; path: string }) =>
  r.method === 'POST' && r.path.includes(`/containers/berth-${id}/exec`);

describe('exec standby', () => {
  it("runs a sandbox's later commands on its standby: with the engine's exec creates held, one still answers in full", async ({
    dockerProxy: docker,
    berthWith,
  }) => {
    const berth = await berthWith(settings({ BERTH_DOCKER_SOCKET: docker.socketPath }));
    const { id } = await berth.client.containers.create({ name: 'standby' });
    await warmUp(berth, id);

    docker.stall(execCreate(id));
    const r = await exec(berth, id, {
      command: ['sh', '-c', 'echo "$GREETING"; cat; pwd; id -u; echo oops >&2; exit 3'],
      env: { GREETING: 'hi there', PATH: '/usr/bin:/bin' },
      stdin: 'from stdin\n',
      workdir: '/mnt/data',
    });
    expect(r).toMatchObject({
      exit_code: 3,
      stdout: expect.stringMatching(/^hi there\nfrom stdin\n\/mnt\/data\n\d{6,}\n$/),
      stderr: 'oops\n',
    });
    // A Docker exec of its own would have been held until the engine's deadline (504).
    docker.release();
  });

  it('runs a command without stdin on a standby with stdin at EOF, as a Docker exec does; the metrics count both paths', async ({
    berthWith,
  }) => {
    const berth = await berthWith(settings());
    const { id } = await berth.client.containers.create({ name: 'eof' });
    await warmUp(berth, id);
    const r = await exec(berth, id, { command: 'cat; echo "read: $?"', timeout_ms: 10_000 });
    expect(r).toMatchObject({ exit_code: 0, stdout: 'read: 0\n' });

    const runs = await scrape(berth);
    expect(runs.get('berth_exec_runs_total{path="docker"}')).toBe(2);
    expect(runs.get('berth_exec_runs_total{path="standby"}')).toBe(1);
    // The one taken is replaced once its command is done.
    await until(() => counted(berth, 1), 'a standby counted', WAIT_MS);
  });

  it("costs nothing when the sandbox's code kills it: the next exec runs the usual way, and it is not replaced", async ({
    berthWith,
  }) => {
    const berth = await berthWith(settings());
    const { id } = await berth.client.containers.create({ name: 'killed' });
    await warmUp(berth, id);
    // As the sandbox's own user (Docker's default for it), as its code could.
    await dockerExec(id, ['pkill', '-KILL', '-f', '^/usr/local/bin/berth-supervisor standby$']);
    await standbysSeen(berth, id, 0, 'the standby gone');

    for (let i = 0; i < 3; i++)
      expect(await exec(berth, id, { command: `echo ${i}` })).toMatchObject({
        exit_code: 0,
        stdout: `${i}\n`,
      });
    await new Promise((r) => setTimeout(r, 500));
    expect(await standbys(id)).toBe(0);
  });

  it("loses only its own standby when the sandbox's code writes a frame of its own on the standby's stdin", async ({
    berthWith,
  }) => {
    const berth = await berthWith(settings());
    const { id } = await berth.client.containers.create({ name: 'fed' });
    await warmUp(berth, id);
    // A whole frame, through /proc, as the sandbox's user: the standby runs it, and speaks (and
    // then waits) before the API handed it anything, so the API drops it.
    const forged = printfBytes(
      ...frame('0', 't', '30000', '', 'sh', '-c', 'echo forged; sleep 30'),
    );
    const fed = await dockerExec(id, [
      'sh',
      '-c',
      `for p in $(pgrep -f '^/usr/local/bin/berth-supervisor standby$'); do printf '${forged}' > /proc/$p/fd/0 && echo fed; done`,
    ]);
    expect(fed.stdout).toBe('fed\n');
    await standbysSeen(berth, id, 0, 'the standby gone');
    const r = await exec(berth, id, { command: 'echo mine' });
    expect(r).toMatchObject({ exit_code: 0, stdout: 'mine\n', stderr: '' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await standbys(id)).toBe(0);
  });

  it('is never started with BERTH_EXEC_STANDBY=0', async ({ berthWith }) => {
    const berth = await berthWith(settings({ BERTH_EXEC_STANDBY: '0' }));
    const { id } = await berth.client.containers.create({ name: 'off' });
    for (let i = 0; i < 3; i++) await exec(berth, id, { command: 'true' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await standbys(id)).toBe(0);
  });

  it('refuses a malformed frame with 64 and exits quietly at EOF', async ({ berthWith }) => {
    const berth = await berthWith(settings());
    const { id } = await berth.client.containers.create({ name: 'frames' });
    const run = async (...parts: (string | number)[]) => {
      const script = `printf '${printfBytes(...parts)}' | /usr/local/bin/berth-supervisor standby; echo "code $?"`;
      return (await dockerExec(id, ['sh', '-c', script])).stdout;
    };
    expect(await run()).toBe('code 0\n');
    // Shorter than its length says; not NUL-terminated; no ARGV; a variable without '='.
    expect(await run(0, 0, 0, 8, 'ab')).toBe('code 64\n');
    expect(await run(0, 0, 0, 2, 'ab')).toBe('code 64\n');
    expect(await run(...frame('0', 't', '1', ''))).toBe('code 64\n');
    expect(await run(...frame('1', 'AB', 't', '1', '', 'true'))).toBe('code 64\n');
    // A whole frame runs under `run`, with its trailer.
    expect(await run(...frame('0', 't', '1000', '', 'echo', 'hi'))).toBe(
      'hi\n\x1eberth-exit t 0\ncode 0\n',
    );
  });
});
