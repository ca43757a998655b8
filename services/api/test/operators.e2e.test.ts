import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { berthTest, errorOf, keysCli, scrapeMetrics, type RunningBerth } from './fixtures.js';

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

/** Calls as a given key (or none), as the admin key, an exec that must answer, one scrape. */
function operatorCalls(berth: RunningBerth, adminKey: string) {
  const as = (key: string | null, path: string, init: RequestInit = {}) =>
    fetch(`${berth.url}${path}`, {
      ...init,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers ?? {}) },
    });
  return {
    as,
    admin: async <T = Record<string, unknown>>(path: string): Promise<T> => {
      const res = await as(adminKey, path);
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as T;
    },
    exec: async (id: string, body: object) => {
      const res = await berth.postJson(`/v1/containers/${id}/exec`, body);
      expect(res.status).toBe(200);
      return (await res.json()) as { timed_out: boolean; oom_killed: boolean; exit_code: number };
    },
    /** One sample of the scrape, `name{labels}` → value. */
    scrape: () => scrapeMetrics(berth.url, METRICS_TOKEN),
  };
}

const it = berthTest({ BERTH_METRICS_TOKEN: METRICS_TOKEN })
  .extend('adminKey', { scope: 'file' }, ({ berth }) => berth.newAdminKey('t'))
  .extend('calls', { scope: 'file' }, ({ berth, adminKey }) => operatorCalls(berth, adminKey));
it.beforeAll(async ({ calls: _ }) => {});

interface EventBody {
  data: {
    id: string;
    kind: string;
    container_id: string;
    project_id: string | null;
    reason: string | null;
  }[];
  has_more: boolean;
  last_id: string | null;
}

describe('operators: metrics and the event log see each lifecycle step', () => {
  it('counts a create, an exec timeout, an OOM, a denied egress request, an expiry and a delete', async ({
    berth,
    calls,
  }) => {
    const c = berth.client.containers;
    const worker = await c.create({
      name: 'worker',
      network_policy: { type: 'allowlist', allowed_domains: ['allowed.test'] },
    });
    const doomed = await c.create({
      name: 'doomed',
      expires_after: { anchor: 'last_active_at', minutes: 1 },
    });
    const gone = await c.create({ name: 'deleted' });

    expect(await calls.exec(worker.id, { command: 'sleep 30', timeout_ms: 300 })).toMatchObject({
      timed_out: true,
    });
    const bomb = await calls.exec(worker.id, {
      command: ['python3', '-c', 'x = []\nwhile True: x.append(bytearray(50 * 1024 * 1024))'],
      timeout_ms: 60_000,
    });
    expect(bomb).toMatchObject({ oom_killed: true, timed_out: false });
    const denied = await dockerExec(worker.id, [
      'sh',
      '-c',
      "curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://denied.test/",
    ]);
    expect(denied.stdout).toBe('403');
    await berth.age([doomed.id], 2);
    await berth.jobs.reap();
    await c.delete(gone.id);

    const m = await calls.scrape();
    expect(m.get('berth_container_creates_total{outcome="created"}')).toBe(3);
    expect(m.get('berth_container_create_duration_seconds_count{outcome="created"}')).toBe(3);
    expect(m.get('berth_execs_total{outcome="timeout"}')).toBe(1);
    expect(m.get('berth_execs_total{outcome="oom"}')).toBe(1);
    expect(m.get('berth_exec_duration_seconds_count{outcome="timeout"}')).toBe(1);
    expect(m.get('berth_egress_decisions_total{result="denied",reason="not_allowlisted"}')).toBe(1);
    expect(m.get('berth_reaper_reaped_total')).toBe(1);
    expect(m.get('berth_container_expiries_total{outcome="removed"}')).toBe(1);
    expect(m.get('berth_reaper_lag_seconds_count')).toBe(1);
    expect(m.get('berth_reaper_ticks_total{outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('berth_container_deletes_total')).toBe(1);
    expect(m.get('berth_containers{status="running"}')).toBe(1);
    expect(m.get('berth_containers{status="expired"}')).toBe(1);
    expect(m.get('berth_reaper_backlog')).toBe(0);
    expect(m.get('berth_up{dependency="postgres"}')).toBe(1);
    expect(m.get('berth_up{dependency="docker"}')).toBe(1);
    expect(
      m.get(
        'berth_http_requests_total{method="POST",route="/v1/containers/:id/exec",status="200"}',
      ),
    ).toBe(2);
    expect(
      m.get('berth_http_requests_total{method="DELETE",route="/v1/containers/:id",status="200"}'),
    ).toBe(1);
    expect(m.get('berth_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Never a container id in a label.
    expect([...m.keys()].some((k) => k.includes('cntr_'))).toBe(false);

    // Events are written in the background: wait until the log holds them all.
    const want = [
      ['created', worker.id],
      ['created', doomed.id],
      ['created', gone.id],
      ['exec_timed_out', worker.id],
      ['oom', worker.id],
      ['egress_denied', worker.id],
      ['expired', doomed.id],
      ['deleted', gone.id],
    ];
    await expect
      .poll(
        async () => {
          const { data } = await calls.admin<EventBody>('/v1/admin/events?limit=100');
          return want.filter(([k, id]) => !data.some((e) => e.kind === k && e.container_id === id));
        },
        { timeout: 10_000, interval: 100 },
      )
      .toEqual([]);
    const { data } = await calls.admin<EventBody>('/v1/admin/events?limit=100');
    const one = (kind: string) => data.find((e) => e.kind === kind)!;
    expect(one('egress_denied').reason).toBe(
      "denied.test:80 denied.test is not on this container's allowlist",
    );
    expect(one('oom').reason).toMatch(/exceeding the memory limit/);
    // The reaper knows only the id; the store filled in the project from the row.
    expect(one('expired').project_id).toMatch(/^proj_/);
    expect(one('expired').project_id).toBe(one('created').project_id);
    // Newest first, and a keyset page continues where the last one stopped.
    const ids = data.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const first = await calls.admin<EventBody>('/v1/admin/events?limit=2');
    const next = await calls.admin<EventBody>(`/v1/admin/events?limit=2&before=${first.last_id}`);
    expect(next.data[0]!.id).toBe(data[2]!.id);
    expect(
      (await calls.admin<EventBody>('/v1/admin/events?kind=oom')).data.map((e) => e.kind),
    ).toEqual(['oom']);
    await c.delete(worker.id);
  });

  it('logs a sandbox removed behind its back as failed, with the reason', async ({
    berth,
    calls,
  }) => {
    const c = await berth.client.containers.create({ name: 'vanishing' });
    await berth.runtime.remove(c.id);
    await berth.jobs.reconcile();
    await expect
      .poll(async () => {
        const { data } = await calls.admin<EventBody>(
          `/v1/admin/events?container_id=${c.id}&kind=failed`,
        );
        return data[0]?.reason;
      })
      .toBe('sandbox vanished');
    expect((await calls.scrape()).get('berth_container_failures_total{reason="vanished"}')).toBe(1);
    expect(
      (await calls.scrape()).get('berth_reconcile_actions_total{action="marked_failed"}'),
    ).toBe(1);
  });

  it('purges events past the retention on a reaper tick', async ({ berth }) => {
    await berth.pool.query(
      `insert into container_events (container_id, kind, at) values ('cntr_old', 'created', now() - interval '30 days')`,
    );
    await berth.jobs.reap();
    const { rows } = await berth.pool.query(
      `select 1 from container_events where container_id = 'cntr_old'`,
    );
    expect(rows).toHaveLength(0);
  });
});

describe('operators: the admin API', () => {
  it('lists containers across projects with live usage, filters and keyset pages', async ({
    berth,
    adminKey,
    calls,
  }) => {
    const other = await berth.newProjectClient();
    const mine = await berth.client.containers.create({ name: 'mine', memory_limit: '1g' });
    const theirs = await other.client.containers.create({
      name: 'theirs',
      memory_limit: '4g',
      expires_after: { anchor: 'last_active_at', minutes: 3 },
    });
    await dockerExec(mine.id, ['sh', '-c', 'true']);
    type List = {
      data: {
        id: string;
        project_id: string;
        status: string;
        memory_limit_bytes: number;
        usage: { memory_bytes: number | null; processes: number | null } | null;
      }[];
      has_more: boolean;
      last_id: string;
    };
    const all = await calls.admin<List>('/v1/admin/containers');
    const ids = all.data.map((x) => x.id);
    expect(ids).toEqual(expect.arrayContaining([mine.id, theirs.id]));
    const m = all.data.find((x) => x.id === mine.id)!;
    expect(m.memory_limit_bytes).toBe(1024 ** 3);
    expect(m.usage!.memory_bytes).toBeGreaterThan(0);
    expect(m.usage!.memory_bytes).toBeLessThan(1024 ** 3);
    expect(m.usage!.processes).toBeGreaterThan(0);

    const by = async (q: string) =>
      (await calls.admin<List>(`/v1/admin/containers?${q}`)).data.map((x) => x.id);
    expect(await by('memory_limit=4g')).toEqual([theirs.id]);
    expect(await by('expiring_within_minutes=5')).toEqual([theirs.id]);
    expect(await by(`project=${m.project_id}&status=running`)).toEqual([mine.id]);
    const p1 = await calls.admin<List>('/v1/admin/containers?limit=1&status=running');
    const p2 = await calls.admin<List>(
      `/v1/admin/containers?limit=1&status=running&after=${p1.last_id}`,
    );
    expect(p1.has_more).toBe(true);
    expect([p1.data[0]!.id, p2.data[0]!.id].sort()).toEqual([mine.id, theirs.id].sort());

    const bad = await calls.as(adminKey, '/v1/admin/containers?limit=0&bogus=1');
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).param).toBe('limit');

    const s = await calls.admin<{
      containers: { by_status: Record<string, number> };
      projects: { project_id: string; running: number; memory_committed_bytes: number }[];
      memory: { committed_bytes: number; host_bytes: number };
      reaper: { backlog: number };
    }>('/v1/admin/summary');
    expect(s.containers.by_status.running).toBe(2);
    expect(s.memory.committed_bytes).toBe(5 * 1024 ** 3);
    expect(s.memory.host_bytes).toBeGreaterThan(0);
    expect(s.projects.map((p) => p.running)).toEqual([1, 1]);
    expect(s.reaper.backlog).toBe(0);
    await berth.client.containers.delete(mine.id);
    await other.client.containers.delete(theirs.id);
  });

  it('answers 404 to project keys and no key on every admin route; admin keys cannot act (403)', async ({
    berth,
    adminKey,
    calls,
  }) => {
    const routes = [
      '/v1/admin/summary',
      '/v1/admin/containers',
      '/v1/admin/events',
      '/v1/admin/nope',
    ];
    for (const key of [berth.apiKey, null, 'sk-berth-not-a-key-at-all']) {
      for (const route of routes) {
        const res = await calls.as(key, route);
        expect(res.status, `${route} with ${key}`).toBe(404);
        expect((await errorOf(res)).message).toBe(`Invalid URL (GET ${route})`);
      }
    }
    const c = await berth.client.containers.create({ name: 'target' });
    const attempts: [string, string, object?][] = [
      ['POST', '/v1/containers', { name: 'x' }],
      ['GET', '/v1/containers'],
      ['POST', `/v1/containers/${c.id}/exec`, { command: 'true' }],
      ['DELETE', `/v1/containers/${c.id}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await calls.as(adminKey, path, {
        method,
        ...(body
          ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
          : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await errorOf(res)).toMatchObject({
        code: 'admin_key_not_allowed',
        type: 'invalid_request_error',
      });
    }
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('running');
    await berth.client.containers.delete(c.id);
  });

  it('`pnpm keys create --admin` makes a key the admin API accepts', async ({ berth, calls }) => {
    const { stdout } = await keysCli(berth.databaseUrl, 'create', '--admin', '--name', 'ops');
    const created = JSON.parse(stdout) as { key: string; admin: boolean };
    expect(created.admin).toBe(true);
    expect((await calls.as(created.key, '/v1/admin/summary')).status).toBe(200);
    expect((await calls.as(created.key, '/v1/containers')).status).toBe(403);
  });
});
