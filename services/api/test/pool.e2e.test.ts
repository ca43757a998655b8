import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_UID_BASE, newId, unixSeconds, type ContainerRecord } from '@berth/core';
import { PgPoolStore } from '@berth/db';
import { dockerExec, inspectSandbox, sandboxImage } from '@berth/testkit';
import { loadConfig } from '../src/config.js';
import { main } from '../src/main.js';
import { expectHardened, startBerth, until, type RunningBerth } from './fixtures.js';

/**
 * The warm pool, against real Docker and Postgres: a claimed sandbox is a cold one in every way
 * a tenant or an operator can check, replicas never share one, a crash mid-claim leaves nothing
 * behind, and an empty pool never makes a create wait.
 */
const GIB = 1024 ** 3;
const METRICS_TOKEN = 'metrics-token-for-the-pool-tests';
const CLAIMS = 'berth_pool_claims_total{memory_limit="1g",network="disabled"}';
const MISSES = 'berth_pool_misses_total{memory_limit="1g",network="disabled"}';
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

// The filler works in the background, on its own schedule: its results are awaited with `until`.
const poolFull = (n = 2) => until(async () => (await idleSlots()) >= n, `${n} idle pool sandboxes`);

const poolSlotOf = async (id: string): Promise<string | null> =>
  (
    await berth.pool.query<{ pool_slot: string | null }>(
      `select pool_slot from containers where id = $1`,
      [id],
    )
  ).rows[0]?.pool_slot ?? null;

async function metric(name: string, of: RunningBerth = berth): Promise<number> {
  const text = await (
    await fetch(`${of.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** A second API process beside `of`: same database, instance and key, its own data directory. */
const replica = (of: RunningBerth, dataDir: string, env: Record<string, string>) =>
  main(
    loadConfig({
      ...env,
      NODE_ENV: 'test',
      BERTH_TEST_MODE: '1',
      DATABASE_URL: of.databaseUrl,
      PORT: '0',
      BERTH_INSTANCE: of.instance,
      BERTH_BOOTSTRAP_API_KEY: of.apiKey,
      BERTH_LOG_LEVEL: 'silent',
      BERTH_SANDBOX_IMAGE: sandboxImage(),
      BERTH_DATA_DIR: dataDir,
      BERTH_ROLE: 'api',
    }),
  );

/** A create's `creating` row as a claim writes it. */
async function creatingRecord(
  of: RunningBerth,
  networkPolicy: ContainerRecord['networkPolicy'],
): Promise<ContainerRecord> {
  const projectId = (await of.pool.query<{ id: string }>(`select id from projects limit 1`))
    .rows[0]!.id;
  const now = new Date();
  return {
    id: newId('container', unixSeconds(now)),
    projectId,
    name: 'crashed',
    createdAt: unixSeconds(now),
    status: 'creating',
    lastActiveAt: now,
    expiresAfterMinutes: 20,
    memoryLimit: '1g',
    networkPolicy,
    statusReason: null,
    sandboxUid: 0,
  };
}

/** Claims a slot the way a create does, as a process that dies right after the claim commits. */
async function claimAndDie(
  of: RunningBerth,
  networkPolicy: ContainerRecord['networkPolicy'],
  egressScope: string | null,
): Promise<{ record: ContainerRecord; slot: string }> {
  const record = await creatingRecord(of, networkPolicy);
  const claim = await new PgPoolStore(of.pool).claim(record, 100, new Date(), egressScope);
  expect(claim.outcome).toBe('claimed');
  return { record, slot: claim.outcome === 'claimed' ? claim.slot.slotId : '' };
}

describe('a create served by the warm pool', () => {
  it('shows on /metrics the pool sandboxes by state and the memory they commit', async () => {
    await poolFull();
    const idle = 'berth_pool_sandboxes{memory_limit="1g",network="disabled",state="idle"}';
    const filling = 'berth_pool_sandboxes{memory_limit="1g",network="disabled",state="filling"}';
    expect(await metric(idle)).toBe(2);
    expect(await metric(filling)).toBe(0);
    expect(await metric('berth_pool_committed_memory_bytes')).toBe(2 * GIB);
  });

  it('gets a cold sandbox’s hardening, limits, own uid, its file_ids and nothing else', async () => {
    await poolFull();
    const file = await berth.client.files.create({
      file: new File(['seeded\n'], 'seed.txt'),
      purpose: 'user_data',
    });
    const claimsBefore = await metric(CLAIMS);
    const created = await berth.client.containers.create({ name: 'warm', file_ids: [file.id] });
    expect(created).toMatchObject({ status: 'running', memory_limit: '1g' });
    expect(parseInt(created.id.slice(5, 13), 16)).toBe(created.created_at);
    const slot = await poolSlotOf(created.id);
    expect(slot).toMatch(/^pool_[0-9a-f]{24}$/);
    expect(await metric(CLAIMS)).toBe(claimsBefore + 1);

    // No rename (Docker's is slow): the sandbox keeps its slot's name; Postgres binds the two.
    expect(await inspectSandbox(created.id)).toBeNull();
    const info = await inspectSandbox(slot!);
    expect(info?.State.Running).toBe(true);
    expectHardened(info!.HostConfig, GIB);
    // Its only mount is the files channel's, as for a cold sandbox.
    expect(info!.HostConfig.Mounts).toEqual([
      expect.objectContaining({
        Type: 'bind',
        Source: join(berth.dataDir, 'egress', 'files-channel'),
        Target: '/run/berth-files',
        ReadOnly: true,
      }),
    ]);
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
    const missesBefore = await metric(MISSES);
    // Three at once against two idle sandboxes: the third finds none and creates cold.
    const created = await Promise.all(
      ['a', 'b', 'c'].map((name) => berth.client.containers.create({ name })),
    );
    const slots = await Promise.all(created.map((c) => poolSlotOf(c.id)));
    expect(slots.filter(Boolean)).toHaveLength(2);
    expect(new Set(slots.filter(Boolean)).size).toBe(2);
    expect(await metric(MISSES)).toBe(missesBefore + 1);
    for (const [i, c] of created.entries())
      expect((await inspectSandbox(slots[i] ?? c.id))?.State.Running).toBe(true);
    // Other limits have no pool: cold, and not a miss.
    const big = await berth.client.containers.create({ name: 'big', memory_limit: '4g' });
    expect(await poolSlotOf(big.id)).toBeNull();
    expect(await metric(MISSES)).toBe(missesBefore + 1);
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
    const second = await replica(berth, dataDir, {
      BERTH_POOL_SIZES: '1g=2',
      BERTH_POOL_FILL_INTERVAL_MS: '0',
      BERTH_EGRESS_DIR: join(dataDir, 'egress'),
    });
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
    // The claim commits, and the process dies before it adopts the sandbox or answers.
    const { record, slot } = await claimAndDie(berth, { type: 'disabled' }, null);
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

/**
 * Allowlist slots: made with a cold allowlist sandbox's body (proxy settings, the slot's egress
 * directory mounted, the forwarder running), the proxy attached to that directory at claim. The
 * upstreams are local servers on loopback that the proxy maps test names to, as in
 * egress.e2e.test.ts; the sandbox itself reaches nothing but its proxy.
 */
describe('an allowlist create served by the warm pool', () => {
  let net: RunningBerth;
  let web: http.Server;
  let echo: Server;
  let egressDir: string;
  const env: Record<string, string> = {};
  const ALLOWLIST_CLAIMS = 'berth_pool_claims_total{memory_limit="1g",network="allowlist"}';
  const ALLOWLIST_MISSES = 'berth_pool_misses_total{memory_limit="1g",network="allowlist"}';
  const policy = { type: 'allowlist' as const, allowed_domains: ['allowed.test'] };

  beforeAll(async () => {
    web = http.createServer((req, res) => res.end(`hello ${req.headers.host ?? ''}`));
    echo = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    const port = (server: Server) =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
      );
    const [webPort, echoPort] = await Promise.all([port(web), port(echo)]);
    egressDir = mkdtempSync(join(tmpdir(), 'berth-pool-egress-'));
    Object.assign(env, {
      BERTH_POOL_SIZES: '1g/allowlist=2',
      BERTH_POOL_FILL_INTERVAL_MS: '0',
      BERTH_CREATING_GRACE_SECONDS: '10',
      BERTH_METRICS_TOKEN: METRICS_TOKEN,
      BERTH_EGRESS_DIR: egressDir,
      BERTH_SECRETS_KEY: randomBytes(32).toString('hex'),
      BERTH_EGRESS_TEST_UPSTREAMS: [
        `allowed.test:80=127.0.0.1:${webPort}`,
        `allowed.test:443=127.0.0.1:${echoPort}`,
        // Reachable for the proxy, never allowed for the sandbox: denial is the policy's doing.
        `other.test:80=127.0.0.1:${webPort}`,
        `other.test:443=127.0.0.1:${echoPort}`,
      ].join(','),
    });
    net = await startBerth(env);
  }, 120_000);
  afterAll(async () => {
    await net?.[Symbol.asyncDispose]();
    web?.close();
    echo?.close();
    rmSync(egressDir, { recursive: true, force: true });
  });

  const idleAllowlist = async () =>
    (
      await net.pool.query<{ n: number }>(
        `select count(*)::int as n from pool_sandboxes where state = 'idle' and network = 'allowlist'`,
      )
    ).rows[0]!.n;
  const full = () => until(async () => (await idleAllowlist()) >= 2, 'two idle allowlist slots');
  const slotOf = async (id: string) =>
    (
      await net.pool.query<{ pool_slot: string | null }>(
        `select pool_slot from containers where id = $1`,
        [id],
      )
    ).rows[0]?.pool_slot ?? null;

  /** What a tenant can reach from inside: its allowed host (HTTP and CONNECT), nothing else. */
  async function expectEgress(sandbox: string): Promise<void> {
    const port = (web.address() as AddressInfo).port;
    const r = await dockerExec(sandbox, [
      'sh',
      '-c',
      `curl -sS --max-time 10 http://allowed.test/; echo
curl -s --max-time 10 -o /dev/null -w '%{http_code}\\n' http://other.test/
ls /sys/class/net
python3 -c "
import socket
for host in [b'allowed.test', b'other.test']:
    s = socket.create_connection(('127.0.0.1', 3128), 10)
    s.sendall(b'CONNECT ' + host + b':443 HTTP/1.1\\r\\nHost: ' + host + b':443\\r\\n\\r\\n')
    head = s.recv(4096).split(b'\\r\\n')[0].decode(); print(head)
    if ' 200 ' in head + ' ':
        s.sendall(b'ping'); print(s.recv(16).decode())
    s.close()
try:
    socket.create_connection(('127.0.0.1', ${port}), 2).close(); print('direct-open')
except OSError: print('direct-refused')
"`,
    ]);
    expect(r.stdout.trim().split('\n')).toEqual([
      'hello allowed.test',
      '403',
      'lo',
      'HTTP/1.1 200 Connection Established',
      'ping',
      'HTTP/1.1 403 Forbidden',
      'direct-refused',
    ]);
  }

  /** The parts of a sandbox's Docker body that make it what it is, minus its own name and uid. */
  async function body(sandbox: string) {
    const info = (await inspectSandbox(sandbox))!;
    const h = info.HostConfig;
    return {
      user: info.Config.User.split(':')[0] === info.Config.User.split(':')[1],
      env: [...(info.Config.Env ?? [])].sort(),
      workdir: info.Config.WorkingDir,
      image: info.Config.Image,
      host: {
        Memory: h.Memory,
        MemorySwap: h.MemorySwap,
        CapDrop: h.CapDrop,
        SecurityOpt: h.SecurityOpt,
        PidsLimit: h.PidsLimit,
        NanoCpus: h.NanoCpus,
        Ulimits: h.Ulimits,
        Init: h.Init,
        ReadonlyRootfs: h.ReadonlyRootfs,
        Privileged: h.Privileged,
        NetworkMode: h.NetworkMode,
        ShmSize: h.ShmSize,
        // The uid in /mnt/data's options is the sandbox's own; the rest must match.
        Tmpfs: Object.fromEntries(
          Object.entries(h.Tmpfs ?? {}).map(([k, v]) => [k, v.replace(/(uid|gid)=\d+/g, '$1=N')]),
        ),
        Mounts: (h.Mounts ?? []).map((m) => ({ ...m, Source: m.Source?.startsWith(egressDir) })),
      },
    };
  }

  it('passes a cold allowlist sandbox’s egress tests, with the same body; an empty pool goes cold', async () => {
    await full();
    const file = await net.client.files.create({
      file: new File(['seeded\n'], 'seed.txt'),
      purpose: 'user_data',
    });
    const claimsBefore = await metric(ALLOWLIST_CLAIMS, net);
    const missesBefore = await metric(ALLOWLIST_MISSES, net);
    // Three at once against two idle slots: two are claimed, the third starts cold at once.
    const created = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        net.client.containers.create({ name, network_policy: policy, file_ids: [file.id] }),
      ),
    );
    const slots = await Promise.all(created.map((c) => slotOf(c.id)));
    const warm = created.filter((_, i) => slots[i]);
    const cold = created.find((_, i) => !slots[i])!;
    expect(warm).toHaveLength(2);
    expect(new Set(slots.filter(Boolean)).size).toBe(2);
    expect(cold).toBeDefined();
    expect(await metric(ALLOWLIST_CLAIMS, net)).toBe(claimsBefore + 2);
    expect(await metric(ALLOWLIST_MISSES, net)).toBe(missesBefore + 1);

    const coldBody = await body(cold.id);
    expect(coldBody.host.Mounts).toEqual([
      expect.objectContaining({
        Type: 'bind',
        Target: '/run/berth-egress',
        ReadOnly: true,
        Source: true,
      }),
      expect.objectContaining({
        Type: 'bind',
        Target: '/run/berth-files',
        ReadOnly: true,
        Source: true,
      }),
    ]);
    await expectEgress(cold.id);
    for (const c of warm) {
      const slot = (await slotOf(c.id))!;
      expect(await inspectSandbox(c.id)).toBeNull();
      expect(await body(slot)).toEqual(coldBody);
      // Its directory is the slot's, and the proxy serves it there.
      expect(existsSync(join(egressDir, slot, 'egress.sock'))).toBe(true);
      await expectEgress(slot);
      // Its own uid, a clean disk holding its file_ids, an empty /tmp.
      const uid = (
        await net.pool.query<{ sandbox_uid: number }>(
          `select sandbox_uid from containers where id = $1`,
          [c.id],
        )
      ).rows[0]!.sandbox_uid;
      expect(uid).toBeGreaterThanOrEqual(POOL_UID_BASE);
      const probe = await dockerExec(slot, [
        'sh',
        '-c',
        'id -u; echo data:$(ls -A /mnt/data); echo tmp:$(ls -A /tmp); grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
      ]);
      expect(probe.stdout).toMatch(new RegExp(`^${uid}\\ndata:seed.txt\\ntmp:\\n`));
      expect(probe.stdout).toMatch(/CapEff:\s+0000000000000000/);
      expect(probe.stdout).toMatch(/NoNewPrivs:\s+1/);
      expect(probe.stdout).toMatch(/Seccomp:\s+2/);
    }
    // Through the API, as its tenant would: the allowed host answers.
    const res = await net.api(`/v1/containers/${warm[0]!.id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'curl -sS --max-time 10 http://allowed.test/' }),
    });
    expect(await res.json()).toMatchObject({ exit_code: 0, stdout: 'hello allowed.test' });

    // A delete leaves nothing: no sandbox, no egress directory, the slot's or the cold one's.
    const dirs = [...(await Promise.all(warm.map((c) => slotOf(c.id)))), cold.id] as string[];
    await Promise.all(created.map((c) => net.client.containers.delete(c.id)));
    for (const d of dirs) {
      expect(await inspectSandbox(d)).toBeNull();
      expect(existsSync(join(egressDir, d))).toBe(false);
    }
  });

  it('creates cold when the allowlist has domain secrets (their environment is fixed at create)', async () => {
    await full();
    const created = await net.client.containers.create({
      name: 'secret',
      network_policy: {
        ...policy,
        domain_secrets: [{ domain: 'allowed.test', name: 'TOKEN', value: 'v' }],
      },
    } as Parameters<typeof net.client.containers.create>[0]);
    expect(await slotOf(created.id)).toBeNull();
    expect((await inspectSandbox(created.id))?.Config.Env).toContainEqual(
      expect.stringMatching(/^TOKEN=/),
    );
    expect(await idleAllowlist()).toBe(2);
    await net.client.containers.delete(created.id);
  });

  it('never gives one allowlist slot to two API processes claiming at once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-replica-'));
    // A second replica on the same host: same database, instance and egress directory root (so
    // it may claim the first one's slots), its own filler and proxy.
    const second = await replica(net, dataDir, env);
    try {
      await full();
      const count = async () =>
        (
          await net.pool.query<{ n: number }>(
            `select count(*)::int as n from pool_sandboxes where network = 'allowlist'`,
          )
        ).rows[0]!.n;
      expect(await count()).toBe(2);
      const create = (url: string) =>
        fetch(`${url}/v1/containers`, {
          method: 'POST',
          headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'race', network_policy: policy }),
        }).then(async (r) => {
          expect(r.status).toBe(200);
          return ((await r.json()) as { id: string }).id;
        });
      const ids = await Promise.all([0, 1, 2, 3].map((i) => create(i % 2 ? second.url! : net.url)));
      const slots = (await Promise.all(ids.map(slotOf))).filter(Boolean);
      expect(slots.length).toBe(2);
      expect(new Set(slots).size).toBe(2);
      const uids = await Promise.all(
        ids.map(async (id) => (await dockerExec((await slotOf(id)) ?? id, ['id', '-u'])).stdout),
      );
      expect(new Set(uids).size).toBe(4);
      for (const id of ids) await expectEgress((await slotOf(id)) ?? id);
      await Promise.all(ids.map((id) => net.client.containers.delete(id)));
    } finally {
      await second.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('claims a slot only for a process whose proxy serves the egress root it was made under', async () => {
    await full();
    const store = new PgPoolStore(net.pool);
    const allowlisted = { type: 'allowlist' as const, allowedDomains: ['allowed.test'] };
    for (const scope of [join(egressDir, 'elsewhere'), null])
      expect(
        await store.claim(await creatingRecord(net, allowlisted), 100, new Date(), scope),
      ).toEqual({ outcome: 'empty' });
    // Nor does a disabled create take an allowlist slot.
    expect(
      await store.claim(await creatingRecord(net, { type: 'disabled' }), 100, new Date(), null),
    ).toEqual({ outcome: 'empty' });
    expect(await idleAllowlist()).toBe(2);
  });

  it('leaves no sandbox, row or egress directory when a process dies mid-claim', async () => {
    await full();
    const { record, slot } = await claimAndDie(
      net,
      { type: 'allowlist', allowedDomains: ['allowed.test'] },
      egressDir,
    );
    expect(existsSync(join(egressDir, slot))).toBe(true);
    await net.pool.query(
      `update containers set updated_at = now() - interval '1 hour' where id = $1`,
      [record.id],
    );
    await net.jobs.reconcile();
    expect(await inspectSandbox(slot)).toBeNull();
    // The directory goes with the egress sync's sweep (it runs where the proxy does).
    await until(async () => !existsSync(join(egressDir, slot)), 'the slot directory swept', 45_000);
    // Every directory left belongs to a slot row or to a live container claimed from one (the
    // files channel's, named so that no id can take it, is no sandbox's).
    for (const d of readdirSync(egressDir).filter((d) => d !== 'files-channel')) {
      const owners = await net.pool.query<{ n: number }>(
        `select (select count(*) from pool_sandboxes where slot_id = $1)
              + (select count(*) from containers where id = $1 or pool_slot = $1) as n`,
        [d],
      );
      expect(Number(owners.rows[0]!.n)).toBe(1);
    }
  }, 90_000);
});
