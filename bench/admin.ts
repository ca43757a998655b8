/**
 * The operators' view under load (issue 13): `/metrics` and the admin container list with 1,000
 * live rows, and what counting metrics and writing the event log add to create and exec.
 * Run alone: `pnpm exec tsx bench/admin.ts`.
 *
 * The 1,000 live rows are rows, not sandboxes: a 2-core machine does not hold 1,000 sandboxes. A
 * few real sandboxes sit among them, so every page also pays for the live-usage read (one Docker
 * list per page, then cgroup files for the real ones).
 */
import { fileURLToPath } from 'node:url';
import { generateApiKey, newId } from '@berth/core';
import { PgAdminStore, PgApiKeyStore } from '@berth/db';
import { percentile, startBenchBerth, time, type BenchBerth, type Row } from './harness.js';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
const METRICS_TOKEN = 'bench-metrics-token-0123456789';

async function seedRows(berth: BenchBerth, n: number): Promise<void> {
  const keys = new PgApiKeyStore(berth.pool);
  const projects = await Promise.all(
    Array.from({ length: 20 }, (_, i) => keys.ensureProject(`bench-admin-${i}`)),
  );
  const now = Math.floor(Date.now() / 1000);
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (let i = 0; i < n; i++) {
    const b = values.length;
    values.push(newId('container', now - i), projects[i % projects.length], 300_000 + i);
    tuples.push(
      `($${b + 1}, $${b + 2}, 'seeded', ${now - i}, 'running', now(), 20, '${['1g', '4g'][i % 2]}', '{"type":"disabled"}', $${b + 3})`,
    );
  }
  await berth.pool.query(
    `insert into containers (id, project_id, name, created_at, status, last_active_at,
       expires_after_minutes, memory_limit, network_policy, sandbox_uid) values ${tuples.join(',')}`,
    values,
  );
}

async function sample(runs: number, fn: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [ms, res] = await time(fn);
    if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    out.push(ms);
  }
  return out;
}

const p50p99 = (name: string, ms: number[], note: string): Row[] => [
  { name: `${name} p50`, value: percentile(ms, 50), unit: 'ms', note },
  { name: `${name} p99`, value: percentile(ms, 99), unit: 'ms', note },
];

export async function benchAdmin(): Promise<Row[]> {
  const rows: Row[] = [];
  const on = await startBenchBerth({ BERTH_ROLE: 'api', BERTH_METRICS_TOKEN: METRICS_TOKEN });
  const off = await startBenchBerth({ BERTH_ROLE: 'api', BERTH_OPERATOR_METRICS: 'off' });
  const created: [BenchBerth, string][] = [];
  const create = async (berth: BenchBerth) => {
    const [ms, res] = await time(() =>
      berth.api('/v1/containers', { method: 'POST', body: JSON.stringify({ name: 'bench-ops' }) }),
    );
    if (res.status !== 200) throw new Error(`create: ${await res.text()}`);
    created.push([berth, ((await res.json()) as { id: string }).id]);
    return ms;
  };
  try {
    // Create and exec, metrics on vs off, interleaved so machine noise hits both alike.
    const createMs = { on: [] as number[], off: [] as number[] };
    for (let i = 0; i < 8; i++) {
      createMs.on.push(await create(on));
      createMs.off.push(await create(off));
    }
    const execMs = { on: [] as number[], off: [] as number[] };
    const target = (b: BenchBerth) => created.find(([x]) => x === b)![1];
    const exec = (b: BenchBerth) =>
      b.api(`/v1/containers/${target(b)}/exec`, {
        method: 'POST',
        body: JSON.stringify({ command: ['true'] }),
      });
    for (let i = 0; i < 40; i++) {
      execMs.on.push(...(await sample(1, () => exec(on))));
      execMs.off.push(...(await sample(1, () => exec(off))));
    }
    for (const [what, s] of [
      ['create', createMs],
      ['exec true', execMs],
    ] as const) {
      const ratio = percentile(s.on, 50) / percentile(s.off, 50);
      rows.push({ name: `${what} p50, metrics on`, value: percentile(s.on, 50), unit: 'ms' });
      rows.push({ name: `${what} p50, metrics off`, value: percentile(s.off, 50), unit: 'ms' });
      rows.push({
        name: `${what} p50 on/off`,
        value: ratio,
        unit: 'x',
        note: `${s.on.length} each`,
      });
    }

    // 1,000 live rows beside the 8 real sandboxes of `on`.
    await seedRows(on, 1000 - 8);
    const key = generateApiKey();
    await new PgAdminStore(on.pool).createAdminKey({
      name: 'bench',
      prefix: key.prefix,
      hash: key.hash,
    });
    const asAdmin = (path: string) =>
      fetch(`${on.url}${path}`, { headers: { authorization: `Bearer ${key.key}` } });
    const scrape = () =>
      fetch(`${on.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    await sample(5, scrape); // warm
    rows.push(...p50p99('GET /metrics, 1,000 live', await sample(100, scrape), '100 scrapes'));
    // Walk all 1,000 rows, 200 a page, as the dashboard's list would.
    const pages: number[] = [];
    for (let round = 0; round < 20; round++) {
      let after: string | null = null;
      for (;;) {
        const path = `/v1/admin/containers?limit=200&status=running${after ? `&after=${after}` : ''}`;
        const [ms, res] = await time(() => asAdmin(path));
        const body = (await res.json()) as { last_id: string | null; has_more: boolean };
        pages.push(ms);
        if (!body.has_more) break;
        after = body.last_id;
      }
    }
    rows.push(...p50p99('admin list page (200 of 1,000)', pages, `${pages.length} pages`));
    rows.push(
      ...p50p99(
        'admin summary, 1,000 live',
        await sample(50, () => asAdmin('/v1/admin/summary')),
        '50 calls',
      ),
    );
  } finally {
    for (const [b, id] of created) await b.api(`/v1/containers/${id}`, { method: 'DELETE' });
    await on.close();
    await off.close();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  benchAdmin().then(
    (rows) => {
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const value = r.unit === 'x' ? r.value.toFixed(2) : r.value.toFixed(1);
        console.log(
          `${r.name.padEnd(width)}  ${value.padStart(10)}  ${r.unit}${r.note ? `  (${r.note})` : ''}`,
        );
      }
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
