import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_UID_BASE, newId, unixSeconds, type ContainerRecord } from '@berth/core';
import { PgPoolStore } from '@berth/db';
import { dockerExec, inspectSandbox, sandboxImage } from '@berth/testkit';
import { loadConfig } from '../src/config.js';
import { main } from '../src/main.js';
import { startBerth, type RunningBerth } from './fixtures.js';

/**
 * The warm pool, against real Docker and Postgres: a claimed sandbox is a cold one in every way
 * a tenant or an operator can check, replicas never share one, a crash mid-claim leaves nothing
 * behind, and an empty pool never makes a create wait.
 */
const GIB = 1024 ** 3;
const METRICS_TOKEN = 'metrics-token-for-the-pool-tests';
let berth: RunningBerth;

beforeAll(async () => {
  berth = await startBerth({
    BERTH_POOL_SIZES: '1g=2',
    BERTH_POOL_FILL_INTERVAL_MS: '0',
    BERTH_CREATING_GRACE_SECONDS: '10',
    BERTH_METRICS_TOKEN: METRICS_TOKEN,
  });
});
afterAll(async () => {
  await berth?.[Symbol.asyncDispose]();
});

const count = async (sql: string, params: unknown[] = []): Promise<number> =>
  (await berth.pool.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;
const idleSlots = () => count(`select count(*)::int as n from pool_sandboxes where state = 'idle'`);

/** Polls until `check` holds: the filler works in the background, on its own schedule. */
async function until(check: () => Promise<boolean>, what: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const poolFull = (n = 2) => until(async () => (await idleSlots()) >= n, `${n} idle pool sandboxes`);

const poolSlotOf = async (id: string): Promise<string | null> =>
  (
    await berth.pool.query<{ pool_slot: string | null }>(
      `select pool_slot from containers where id = $1`,
      [id],
    )
  ).rows[0]?.pool_slot ?? null;

async function metric(name: string): Promise<number> {
  const text = await (
    await fetch(`${berth.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('a create served by the warm pool', () => {
  it('gets a cold sandbox’s hardening, limits, own uid, its file_ids and nothing else', async () => {
    await poolFull();
    const file = await berth.client.files.create({
      file: new File(['seeded\n'], 'seed.txt'),
      purpose: 'user_data',
    });
    const claimsBefore = await metric('berth_pool_claims_total{memory_limit="1g"}');
    const created = await berth.client.containers.create({ name: 'warm', file_ids: [file.id] });
    expect(created).toMatchObject({ status: 'running', memory_limit: '1g' });
    expect(parseInt(created.id.slice(5, 13), 16)).toBe(created.created_at);
    const slot = await poolSlotOf(created.id);
    expect(slot).toMatch(/^pool_[0-9a-f]{24}$/);
    expect(await metric('berth_pool_claims_total{memory_limit="1g"}')).toBe(claimsBefore + 1);

    // No rename (Docker's is slow): the sandbox keeps its slot's name; Postgres binds the two.
    expect(await inspectSandbox(created.id)).toBeNull();
    const info = await inspectSandbox(slot!);
    expect(info?.State.Running).toBe(true);
    const host = info!.HostConfig;
    expect(host.Memory).toBe(GIB);
    expect(host.MemorySwap).toBe(GIB);
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.SecurityOpt).toContain('no-new-privileges:true');
    expect(host.Privileged).toBe(false);
    expect(host.NetworkMode).toBe('none');
    expect(host.PidsLimit).toBeGreaterThan(0);
    expect(host.NanoCpus).toBeGreaterThan(0);
    expect(host.Init).toBe(true);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.Binds ?? []).toEqual([]);
    expect(host.Mounts ?? []).toEqual([]);
    expect(info!.Config.Labels).toMatchObject({
      'org.berth.managed-by': 'berth',
      'org.berth.instance': berth.instance,
      'org.berth.pool-slot': slot,
    });

    const uid = (
      await berth.pool.query<{ sandbox_uid: number }>(
        `select sandbox_uid from containers where id = $1`,
        [created.id],
      )
    ).rows[0]!.sandbox_uid;
    expect(uid).toBeGreaterThanOrEqual(POOL_UID_BASE);
    const probe = await dockerExec(slot!, [
      'sh',
      '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; id -u; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; for n in /sys/class/net/*; do echo net:${n##*/}; done; touch /etc/x 2>&1 || true; echo data:$(ls -A /mnt/data); echo tmp:$(ls -A /tmp); env | grep -ci proxy || true',
    ]);
    const lines = probe.stdout.trim().split('\n');
    expect(Number(lines[0])).toBe(GIB);
    expect(Number(lines[1])).toBe(uid);
    expect(info!.Config.User).toBe(`${uid}:${uid}`);
    expect(probe.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(probe.stdout).toMatch(/CapBnd:\s+0000000000000000/);
    expect(probe.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(probe.stdout).toMatch(/Seccomp:\s+2/);
    expect(lines.filter((l) => l.startsWith('net:'))).toEqual(['net:lo']);
    expect(probe.stdout).toMatch(/Read-only file system/);
    // A clean disk: the seeded file and nothing else; an empty /tmp; no proxy settings.
    expect(lines).toContain('data:seed.txt');
    expect(lines).toContain('tmp:');
    expect(lines.at(-1)).toBe('0');

    // Through the API, as the sandbox's own user.
    const res = await berth.api(`/v1/containers/${created.id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'id -u; cat /mnt/data/seed.txt' }),
    });
    const run = (await res.json()) as { stdout: string; exit_code: number };
    expect(run).toMatchObject({ exit_code: 0, stdout: `${uid}\nseeded\n` });

    // Files reach the same sandbox: an upload, its listing and its bytes back.
    const form = new FormData();
    form.append('file', new Blob(['warm bytes']), 'up.txt');
    const up = await berth.api(`/v1/containers/${created.id}/files`, {
      method: 'POST',
      body: form,
    });
    const upped = (await up.json()) as { id: string };
    expect(up.status).toBe(200);
    const back = await berth.api(`/v1/containers/${created.id}/files/${upped.id}/content`);
    expect(await back.text()).toBe('warm bytes');
    expect((await dockerExec(slot!, ['cat', '/mnt/data/up.txt'])).stdout).toBe('warm bytes');

    await berth.client.containers.delete(created.id);
    expect(await inspectSandbox(slot!)).toBeNull();
  });

  it('falls back to a cold create at once when the pool is empty', async () => {
    await poolFull();
    const missesBefore = await metric('berth_pool_misses_total{memory_limit="1g"}');
    // Three at once against two idle sandboxes: the third finds none and creates cold.
    const created = await Promise.all(
      ['a', 'b', 'c'].map((name) => berth.client.containers.create({ name })),
    );
    const slots = await Promise.all(created.map((c) => poolSlotOf(c.id)));
    expect(slots.filter(Boolean)).toHaveLength(2);
    expect(new Set(slots.filter(Boolean)).size).toBe(2);
    expect(await metric('berth_pool_misses_total{memory_limit="1g"}')).toBe(missesBefore + 1);
    for (const [i, c] of created.entries())
      expect((await inspectSandbox(slots[i] ?? c.id))?.State.Running).toBe(true);
    // Other limits have no pool: cold, and not a miss.
    const big = await berth.client.containers.create({ name: 'big', memory_limit: '4g' });
    expect(await poolSlotOf(big.id)).toBeNull();
    expect(await metric('berth_pool_misses_total{memory_limit="1g"}')).toBe(missesBefore + 1);
    await Promise.all([...created, big].map((c) => berth.client.containers.delete(c.id)));
  });

  it('counts claimed sandboxes toward the project cap, and idle pool sandboxes not at all', async () => {
    const capped = await startBerth({
      BERTH_POOL_SIZES: '1g=2',
      BERTH_POOL_FILL_INTERVAL_MS: '0',
      BERTH_MAX_CONTAINERS_PER_PROJECT: '1',
    });
    try {
      const idle = async () =>
        (
          await capped.pool.query<{ n: number }>(
            `select count(*)::int as n from pool_sandboxes where state = 'idle'`,
          )
        ).rows[0]!.n;
      await until(async () => (await idle()) >= 2, 'a full pool');
      // Two idle sandboxes wait, yet the project's one allowed container is still free.
      const first = await capped.client.containers.create({ name: 'only' });
      const row = await capped.pool.query<{ pool_slot: string | null }>(
        `select pool_slot from containers where id = $1`,
        [first.id],
      );
      expect(row.rows[0]!.pool_slot).toMatch(/^pool_/);
      const res = await capped.api('/v1/containers', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'one too many' }),
      });
      expect(res.status).toBe(429);
      // The refusal took no sandbox from the pool.
      await until(async () => (await idle()) >= 2, 'the pool refilled');
      expect(
        (await capped.pool.query<{ n: number }>(`select count(*)::int as n from containers`))
          .rows[0]!.n,
      ).toBe(1);
    } finally {
      await capped[Symbol.asyncDispose]();
    }
  });

  it('never gives one sandbox to two API processes claiming at once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-replica-'));
    // A second replica: same database, same instance, its own filler and its own pool of requests.
    const second = await main(
      loadConfig({
        NODE_ENV: 'test',
        BERTH_TEST_MODE: '1',
        DATABASE_URL: berth.databaseUrl,
        PORT: '0',
        BERTH_INSTANCE: berth.instance,
        BERTH_BOOTSTRAP_API_KEY: berth.apiKey,
        BERTH_LOG_LEVEL: 'silent',
        BERTH_POOL_SIZES: '1g=2',
        BERTH_POOL_FILL_INTERVAL_MS: '0',
        BERTH_SANDBOX_IMAGE: sandboxImage(),
        BERTH_DATA_DIR: dataDir,
        BERTH_EGRESS_DIR: join(dataDir, 'egress'),
        BERTH_ROLE: 'api',
      }),
    );
    try {
      await poolFull();
      // Both fillers share one count: the pool never overshoots its size.
      expect(await count(`select count(*)::int as n from pool_sandboxes`)).toBe(2);
      const create = (url: string) =>
        fetch(`${url}/v1/containers`, {
          method: 'POST',
          headers: { authorization: `Bearer ${berth.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'race' }),
        }).then(async (r) => {
          expect(r.status).toBe(200);
          return ((await r.json()) as { id: string }).id;
        });
      const ids = await Promise.all(
        [0, 1, 2, 3].map((i) => create(i % 2 ? second.url! : berth.url)),
      );
      const slots = (await Promise.all(ids.map(poolSlotOf))).filter(Boolean);
      expect(slots.length).toBe(2);
      expect(new Set(slots).size).toBe(slots.length);
      // Four containers, four sandboxes, four uids.
      const uids = await Promise.all(
        ids.map(
          async (id) => (await dockerExec((await poolSlotOf(id)) ?? id, ['id', '-u'])).stdout,
        ),
      );
      expect(new Set(uids).size).toBe(4);
      await Promise.all(ids.map((id) => berth.client.containers.delete(id)));
    } finally {
      await second.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('leaves no orphan when a process dies between its claim and its answer', async () => {
    await poolFull();
    const projectId = (await berth.pool.query<{ id: string }>(`select id from projects limit 1`))
      .rows[0]!.id;
    const now = new Date();
    const record: ContainerRecord = {
      id: newId('container', unixSeconds(now)),
      projectId,
      name: 'crashed',
      createdAt: unixSeconds(now),
      status: 'creating',
      lastActiveAt: now,
      expiresAfterMinutes: 20,
      memoryLimit: '1g',
      networkPolicy: { type: 'disabled' },
      statusReason: null,
      sandboxUid: 0,
    };
    // The claim commits, and the process dies before it adopts the sandbox or answers.
    const claim = await new PgPoolStore(berth.pool).claim(record, 100, now);
    expect(claim.outcome).toBe('claimed');
    const slot = claim.outcome === 'claimed' ? claim.slot.slotId : '';
    expect((await inspectSandbox(slot))?.State.Running).toBe(true);
    // And a filler died after writing its row, before its sandbox existed.
    const ghost = `pool_${randomBytes(12).toString('hex')}`;
    await berth.pool.query(
      `insert into pool_sandboxes (slot_id, memory_limit, sandbox_uid, state) values ($1, '1g', $2, 'filling')`,
      [ghost, POOL_UID_BASE + 1],
    );
    // Past the grace a create in flight gets.
    await berth.pool.query(
      `update containers set updated_at = now() - interval '1 hour' where id = $1`,
      [record.id],
    );
    await berth.pool.query(
      `update pool_sandboxes set updated_at = now() - interval '1 hour' where slot_id = $1`,
      [ghost],
    );
    await berth.jobs.reconcile();
    expect(await inspectSandbox(slot)).toBeNull();
    expect(
      await count(`select count(*)::int as n from containers where id = $1`, [record.id]),
    ).toBe(0);
    expect(
      await count(`select count(*)::int as n from pool_sandboxes where slot_id = $1`, [ghost]),
    ).toBe(0);
    // Every sandbox left belongs to a row: a container's, a pool slot's, or a container claimed from one.
    for (const s of await berth.runtime.listManaged()) {
      const owners = await count(
        `select (select count(*) from pool_sandboxes where slot_id = $1)
              + (select count(*) from containers where id = $1 or pool_slot = $1) as n`,
        [s.containerId],
      );
      expect(owners).toBe(1);
    }
  });
});
