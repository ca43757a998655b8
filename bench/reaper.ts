import cron from 'node-cron';
import { Reaper, newId, systemClock } from '@berth/core';
import { PgExpiryStore } from '@berth/db';
import { DockerClient, DockerSandboxRuntime, defaultSandboxLimits } from '@berth/sandbox-docker';
import { sandboxImage } from '@berth/testkit';
import { percentile, time, type BenchBerth, type Row } from './harness.js';

async function makeSandboxes(
  berth: BenchBerth,
  runtime: DockerSandboxRuntime,
  n: number,
  deadline: (i: number) => Date,
): Promise<string[]> {
  const {
    rows: [project],
  } = await berth.pool.query<{ id: string }>("select id from projects where name = 'default'");
  const ids: string[] = [];
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, () =>
      newId('container', Math.floor(Date.now() / 1000)),
    );
    await Promise.all(
      batch.map((id) =>
        runtime.create({
          containerId: id,
          projectId: project!.id,
          uid: 200_000 + ids.length + batch.indexOf(id),
          memoryLimitBytes: 2 ** 30,
          network: { type: 'disabled' },
        }),
      ),
    );
    ids.push(...batch);
  }
  await berth.pool.query(
    `insert into containers (id, project_id, name, created_at, status, last_active_at, expires_after_minutes, memory_limit, network_policy)
     select id, $2, 'reap', ('x' || substr(id, 6, 8))::bit(32)::bigint, 'running', d - interval '1 minute', 1, '1g', '{"type":"disabled"}'
     from unnest($1::text[], $3::timestamptz[]) as t(id, d)`,
    [ids, project!.id, ids.map((_, i) => deadline(i))],
  );
  return ids;
}

/** Time to reap 200 expired sandboxes in one tick, and the lag from expiry to removal on the default schedule. */
export async function benchReaper(berth: BenchBerth, n = 200): Promise<Row[]> {
  const runtime = new DockerSandboxRuntime({
    ...defaultSandboxLimits,
    client: new DockerClient(),
    image: sandboxImage(),
    instance: `${berth.instance}r`,
  });
  const store = new PgExpiryStore(berth.pool);
  const rows: Row[] = [];
  try {
    await makeSandboxes(berth, runtime, n, () => new Date(Date.now() - 1000));
    const options = {
      store,
      runtime,
      clock: systemClock,
      concurrency: 4,
      maxPerTick: 1000,
      retentionMs: 86_400_000,
    };
    const reaper = new Reaper(options);
    const [ms, report] = await time(() => reaper.tick());
    rows.push({
      name: `reap ${n} expired sandboxes (concurrency 4)`,
      value: ms,
      unit: 'ms',
      note: `${report.expired} expired, ${report.failed} failed`,
    });

    // Deadlines spread over 10 s from now, reaped by the default schedule (every 5 s).
    const m = 40;
    const start = Date.now() + 3000;
    await makeSandboxes(berth, runtime, m, (i) => new Date(start + (i * 10_000) / m));
    const lags: number[] = [];
    const scheduled = new Reaper({ ...options, onReaped: (_id, lag) => lags.push(lag) });
    const task = cron.schedule('*/5 * * * * *', () => void scheduled.tick(), { noOverlap: true });
    const until = Date.now() + 60_000;
    while (lags.length < m && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
    await task.stop();
    rows.push({
      name: 'reap lag after expiry p50 (cron */5 s)',
      value: percentile(lags, 50),
      unit: 'ms',
    });
    rows.push({
      name: 'reap lag after expiry max (cron */5 s)',
      value: Math.max(...lags),
      unit: 'ms',
    });
  } finally {
    for (const s of await runtime.listManaged()) await runtime.remove(s.containerId);
  }
  return rows;
}
