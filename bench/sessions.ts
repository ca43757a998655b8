import { join } from 'node:path';
// Not a dependency of the bench package: read from source, as main.ts is.
import { FsBlobStore } from '../packages/blob-store-fs/src/index.js';
import { ContainerArchiver, Reaper, systemClock, type ArchiveReport } from '@berth/core';
import { PgArchiveStore, PgContainerFileStore, PgExpiryStore } from '@berth/db';
import {
  DockerClient,
  DockerSandboxFiles,
  DockerSandboxRuntime,
  defaultSandboxLimits,
} from '@berth/sandbox-docker';
import { sandboxImage } from '@berth/testkit';
import { percentile, time, type BenchBerth, type Row } from './harness.js';

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json()) as T;
  if (res.status !== 200) throw new Error(`answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

const LOAD = `import pandas as pd
df = pd.read_pickle("/mnt/data/frame.pkl")
x = len(df)`;

/**
 * The point of a session: the second step of an agent that loaded a large dataframe. `x + 1` in a
 * session that already holds it, against the same work through exec (load, then `x + 1`).
 */
export async function benchSessions(berth: BenchBerth, runs = 15): Promise<Row[]> {
  const { id } = await json<{ id: string }>(
    await berth.api('/v1/containers', {
      method: 'POST',
      body: JSON.stringify({ name: 'bench-sessions', memory_limit: '4g' }),
    }),
  );
  const exec = (command: string) =>
    berth.api(`/v1/containers/${id}/exec`, {
      method: 'POST',
      body: JSON.stringify({ command: ['python3', '-c', command], timeout_ms: 300_000 }),
    });
  try {
    // 4 M rows x 6 float columns: ~190 MB in memory, a realistic "large dataframe".
    const made = await json<{ exit_code: number }>(
      await exec(
        'import numpy as np, pandas as pd; pd.DataFrame(np.random.rand(4_000_000, 6)).to_pickle("/mnt/data/frame.pkl")',
      ),
    );
    if (made.exit_code !== 0) throw new Error('could not write the dataframe');
    const session = await json<{ id: string }>(
      await berth.api(`/v1/containers/${id}/sessions`, { method: 'POST', body: '{}' }),
    );
    const run = (code: string) =>
      berth.api(`/v1/containers/${id}/sessions/${session.id}/run`, {
        method: 'POST',
        body: JSON.stringify({ code, timeout_ms: 300_000 }),
      });
    const [firstMs] = await time(async () => json(await run(LOAD)));
    const second: number[] = [];
    const viaExec: number[] = [];
    for (let i = 0; i < runs; i++) {
      second.push(
        (
          await time(async () => {
            const r = await json<{ result: string }>(await run('x + 1'));
            if (r.result !== '4000001') throw new Error(`unexpected ${r.result}`);
          })
        )[0],
      );
      viaExec.push(
        (
          await time(async () => {
            const r = await json<{ stdout: string }>(await exec(`${LOAD}\nprint(x + 1)`));
            if (r.stdout !== '4000001\n') throw new Error(`unexpected ${r.stdout}`);
          })
        )[0],
      );
    }
    const rows: Row[] = [
      { name: 'session first run (load a 190 MB dataframe)', value: firstMs, unit: 'ms' },
    ];
    for (const p of [50, 95]) {
      const s = percentile(second, p);
      const e = percentile(viaExec, p);
      rows.push({ name: `session second run p${p} (x + 1)`, value: s, unit: 'ms' });
      rows.push({ name: `same work through exec p${p} (load + x + 1)`, value: e, unit: 'ms' });
      rows.push({ name: `exec / session p${p}`, value: e / s, unit: 'x' });
    }
    const [trivial] = await time(async () => json(await run('1')));
    rows.push({ name: 'session run of `1` (round trip)', value: trivial, unit: 'ms' });
    return rows;
  } finally {
    await berth.api(`/v1/containers/${id}`, { method: 'DELETE' });
  }
}

/**
 * Archive (what the reaper adds to an expiry) and restore of 100 MB in /mnt/data. The bench
 * service runs as `api`, so this drives a reaper of its own against the same database, engine and
 * blob directory (the service's default BERTH_DATA_DIR).
 */
export async function benchArchive(berth: BenchBerth): Promise<Row[]> {
  const client = new DockerClient();
  const runtime = new DockerSandboxRuntime({
    ...defaultSandboxLimits,
    client,
    image: sandboxImage(),
    instance: berth.instance,
  });
  let report: ArchiveReport | null = null;
  const archiver = new ContainerArchiver({
    sandbox: new DockerSandboxFiles({ client }),
    files: new PgContainerFileStore(berth.pool),
    archives: new PgArchiveStore(berth.pool),
    blobs: new FsBlobStore(join('.berth/data', 'archives')),
    clock: systemClock,
    maxBytes: 512 * 1024 * 1024,
    timeoutMs: 300_000,
    onArchived: (_id, r) => (report = r),
    onError: (error) => console.error('archive failed', error),
  });
  const reaper = new Reaper({
    store: new PgExpiryStore(berth.pool),
    runtime,
    clock: systemClock,
    concurrency: 1,
    maxPerTick: 10,
    retentionMs: 24 * 3_600_000,
    archiver,
  });
  const { id } = await json<{ id: string }>(
    await berth.api('/v1/containers', {
      method: 'POST',
      body: JSON.stringify({ name: 'bench-archive' }),
    }),
  );
  let restoredId: string | null = null;
  try {
    const wrote = await json<{ exit_code: number }>(
      await berth.api(`/v1/containers/${id}/exec`, {
        method: 'POST',
        body: JSON.stringify({
          command:
            'for i in 1 2 3 4; do head -c 26214400 /dev/urandom > /mnt/data/part$i.bin; done',
          timeout_ms: 120_000,
        }),
      }),
    );
    if (wrote.exit_code !== 0) throw new Error('could not write 100 MB');
    await berth.pool.query(
      `update containers set last_active_at = now() - interval '1 day' where id = $1`,
      [id],
    );
    const [tickMs] = await time(() => reaper.tick());
    const archived = report as ArchiveReport | null;
    if (!archived || archived.bytes !== 100 * 1024 * 1024)
      throw new Error(`archive incomplete: ${JSON.stringify(archived)}`);
    const [restoreMs, restored] = await time(async () =>
      json<{ id: string }>(await berth.api(`/v1/containers/${id}/restore`, { method: 'POST' })),
    );
    restoredId = restored.id;
    return [
      { name: 'archive 100 MB (4 files) at expiry', value: archived.durationMs, unit: 'ms' },
      { name: 'expiry tick with that archive (archive + remove)', value: tickMs, unit: 'ms' },
      { name: 'restore 100 MB into a new container', value: restoreMs, unit: 'ms' },
    ];
  } finally {
    if (restoredId) await berth.api(`/v1/containers/${restoredId}`, { method: 'DELETE' });
    await berth.api(`/v1/containers/${id}`, { method: 'DELETE' });
  }
}
