import { newId } from '@berth/core';
import { sandboxImage } from '@berth/testkit';
import {
  ALLOWLIST_POOL_SIZE,
  POOL_SIZE,
  percentile,
  time,
  type BenchBerth,
  type Row,
} from './harness.js';
import { testDocker } from '@berth/testkit';

// The bare twin: dockerode itself, through the one client (no Berth helper in the way).
const docker = testDocker.docker;

/** Cold create latency over HTTP (4g: no pool) beside a bare dockerode create+start of the same. */
export async function benchCreate(berth: BenchBerth, runs = 20): Promise<Row[]> {
  const http: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [ms, res] = await time(() =>
      berth.api('/v1/containers', {
        method: 'POST',
        body: JSON.stringify({ name: `bench-${i}`, memory_limit: '4g' }),
      }),
    );
    const body = (await res.json()) as { id: string };
    if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(body)}`);
    http.push(ms);
    await berth.api(`/v1/containers/${body.id}`, { method: 'DELETE' });

    const [bareMs, container] = await time(async () => {
      const c = await docker.createContainer({
        Image: sandboxImage(),
        Labels: { 'org.berth.bench': 'true' },
        HostConfig: { NetworkMode: 'none', Memory: 4 * 1024 ** 3, MemorySwap: 4 * 1024 ** 3 },
      });
      await c.start();
      return c;
    });
    bare.push(bareMs);
    await container.remove({ force: true });
  }
  const rows: Row[] = [];
  for (const p of [50, 95]) {
    const h = percentile(http, p);
    const b = percentile(bare, p);
    rows.push({ name: `create p${p}: POST /v1/containers (cold)`, value: h, unit: 'ms' });
    rows.push({ name: `create p${p}: bare dockerode create+start`, value: b, unit: 'ms' });
    rows.push({ name: `create p${p}: ratio http/bare`, value: h / b, unit: 'x' });
  }
  return rows;
}

/** List latency for the first page and for a page 40,000 rows deep into 50,000. */
export async function benchList(berth: BenchBerth, total = 50_000, runs = 50): Promise<Row[]> {
  const {
    rows: [project],
  } = await berth.pool.query<{ id: string }>("select id from projects where name = 'default'");
  if (!project) throw new Error('no default project');
  const base = Math.floor(Date.now() / 1000) - total;
  const ids = Array.from({ length: total }, (_, i) => newId('container', base + Math.floor(i / 3)));
  await berth.pool.query(
    `insert into containers (id, project_id, name, created_at, status, last_active_at, expires_after_minutes, memory_limit, network_policy)
     select id, $2, 'bench', ('x' || substr(id, 6, 8))::bit(32)::bigint, 'expired', now(), 20, '1g', '{"type":"disabled"}'
     from unnest($1::text[]) as id`,
    [ids, project.id],
  );
  await berth.pool.query('analyze containers');
  const sorted = [...ids].sort((a, b) =>
    a.slice(5, 13) === b.slice(5, 13) ? (a < b ? -1 : 1) : a.slice(5, 13) < b.slice(5, 13) ? -1 : 1,
  );
  const deepAfter = sorted[total - 40_000]!; // desc order: 40,000 rows in
  const measure = async (path: string) => {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [ms, res] = await time(() => berth.api(path));
      if (res.status !== 200) throw new Error(`list failed: ${res.status}`);
      await res.arrayBuffer();
      samples.push(ms);
    }
    return samples;
  };
  const first = await measure('/v1/containers?limit=20');
  const deep = await measure(`/v1/containers?limit=20&after=${deepAfter}`);
  return [
    { name: `list p50: first page of ${total}`, value: percentile(first, 50), unit: 'ms' },
    { name: `list p95: first page of ${total}`, value: percentile(first, 95), unit: 'ms' },
    { name: `list p50: page 40,000 rows deep`, value: percentile(deep, 50), unit: 'ms' },
    { name: `list p95: page 40,000 rows deep`, value: percentile(deep, 95), unit: 'ms' },
  ];
}

type Network = 'disabled' | 'allowlist';

const idleSlots = async (berth: BenchBerth, network: Network): Promise<number> =>
  (
    await berth.pool.query<{ n: number }>(
      `select count(*)::int as n from pool_sandboxes where state = 'idle' and network = $1`,
      [network],
    )
  ).rows[0]?.n ?? 0;

/** Waits (untimed) until the filler has put `n` sandboxes in the pool of `network`. */
export async function poolReady(
  berth: BenchBerth,
  n: number,
  network: Network = 'disabled',
  timeoutMs = 300_000,
): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; (await idleSlots(berth, network)) < n;) {
    if (Date.now() > deadline)
      throw new Error(`the ${network} pool did not reach ${n} idle sandboxes`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits (untimed) until both pools are full, so no filler's Docker create runs beside what is
 * measured next (a claim wakes the filler; its refill would land in the next timings).
 */
export async function poolsFull(berth: BenchBerth): Promise<void> {
  try {
    await poolReady(berth, POOL_SIZE, 'disabled', 120_000);
    await poolReady(berth, ALLOWLIST_POOL_SIZE, 'allowlist', 120_000);
  } catch (error) {
    // A host too busy to fill the pool in two minutes: measure anyway, and say so.
    console.error(`bench: ${(error as Error).message}; measuring with the filler still running`);
  }
}

/**
 * Create latency while the pool has a sandbox (each create waits, untimed, for the filler), beside
 * the same bare dockerode create+start: the claim path against the cold one. `allowlist`: the
 * claim also attaches the proxy to the slot's egress directory.
 */
export async function benchPoolCreate(
  berth: BenchBerth,
  runs = 30,
  network: Network = 'disabled',
): Promise<Row[]> {
  const allowlist = network === 'allowlist';
  const label = allowlist ? 'pool hit, allowlist' : 'pool hit';
  const http: number[] = [];
  const floor: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    // A full pool: the filler is idle while the timed create runs.
    await poolReady(berth, allowlist ? ALLOWLIST_POOL_SIZE : POOL_SIZE, network);
    const request = {
      name: `warm-${i}`,
      ...(allowlist
        ? { network_policy: { type: 'allowlist', allowed_domains: ['example.com'] } }
        : {}),
    };
    const [ms, res] = await time(() =>
      berth.api('/v1/containers', { method: 'POST', body: JSON.stringify(request) }),
    );
    const body = (await res.json()) as { id: string };
    if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(body)}`);
    http.push(ms);
    // The floor any API call pays on this machine: HTTP, auth and one query.
    floor.push((await time(() => berth.api(`/v1/containers/${body.id}`)))[0]);
    await berth.api(`/v1/containers/${body.id}`, { method: 'DELETE' });
    const [bareMs, container] = await time(async () => {
      const c = await docker.createContainer({
        Image: sandboxImage(),
        Labels: { 'org.berth.bench': 'true' },
        HostConfig: { NetworkMode: 'none', Memory: 1024 ** 3, MemorySwap: 1024 ** 3 },
      });
      await c.start();
      return c;
    });
    bare.push(bareMs);
    await container.remove({ force: true });
  }
  const rows: Row[] = [];
  for (const p of [50, 99]) {
    const h = percentile(http, p);
    const b = percentile(bare, p);
    rows.push({ name: `create p${p}: POST /v1/containers (${label})`, value: h, unit: 'ms' });
    const of = allowlist ? ' (allowlist run)' : '';
    rows.push({ name: `create p${p}: bare dockerode create+start${of}`, value: b, unit: 'ms' });
    rows.push({ name: `create p${p}: ratio pool/bare${of}`, value: h / b, unit: 'x' });
    rows.push({
      name: `create p${p}: GET /v1/containers/{id} (floor)${of}`,
      value: percentile(floor, p),
      unit: 'ms',
    });
  }
  return rows;
}
