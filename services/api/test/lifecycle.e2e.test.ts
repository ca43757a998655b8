import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NotFoundError } from 'openai';
import { describe, expect } from 'vitest';
import { aSandboxSpec, dockerExec, inspectSandbox, removeSandboxByHand } from '@berth/testkit';
import { Reaper, systemClock, type SandboxRuntime } from '@berth/core';
import { PgExpiryStore } from '@berth/db';
import { test as it } from './fixtures.js';

describe('expiry', () => {
  it('removes the sandbox of an expired container and keeps the row queryable as expired', async ({
    berthWith,
  }) => {
    const berth = await berthWith();
    const keep = await berth.client.containers.create({
      name: 'keep',
      expires_after: { anchor: 'last_active_at', minutes: 5 },
    });
    const doomed = await berth.client.containers.create({
      name: 'doomed',
      expires_after: { anchor: 'last_active_at', minutes: 1 },
    });
    await berth.age([doomed.id, keep.id], 2);

    // Past its deadline it reads as expired at once, before the reaper has run.
    expect((await berth.client.containers.retrieve(doomed.id)).status).toBe('expired');
    await berth.jobs.reap();

    expect(await inspectSandbox(doomed.id)).toBeNull();
    expect(await inspectSandbox(keep.id)).not.toBeNull();
    const got = await berth.client.containers.retrieve(doomed.id);
    expect(got.status).toBe('expired');
    const listed = await berth.client.containers.list({ limit: 100 });
    expect(listed.data.find((c) => c.id === doomed.id)?.status).toBe('expired');
    expect(listed.data.find((c) => c.id === keep.id)?.status).toBe('running');
    // Retrieve and list are not activity: it stays expired and its last_active_at did not move.
    expect(doomed.last_active_at).toBeDefined();
    expect(got.last_active_at).toBe(doomed.last_active_at! - 120);
  });

  it('purges expired rows after the retention period; their ids then answer 404', async ({
    berthWith,
  }) => {
    const berth = await berthWith({ BERTH_EXPIRED_RETENTION_HOURS: '0' });
    const c = await berth.createExpired('short');
    await berth.jobs.reap(); // expires it
    await berth.pool.query(
      `update containers set updated_at = now() - interval '1 second' where id = $1`,
      [c.id],
    );
    await berth.jobs.reap(); // purges it
    await expect(berth.client.containers.retrieve(c.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reports a sandbox removed by hand as failed, and refuses to use it', async ({
    berthWith,
  }) => {
    const berth = await berthWith();
    const c = await berth.client.containers.create({ name: 'vanishing' });
    await removeSandboxByHand(c.id);
    await berth.jobs.reconcile();
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('failed');
  });

  it('reports a sandbox whose init was stopped (as after a daemon restart) as failed', async ({
    berthWith,
  }) => {
    const berth = await berthWith();
    const c = await berth.client.containers.create({ name: 'stopped' });
    // Code in the sandbox can stop its own sandbox (init runs as the sandbox user): only itself is hurt.
    await dockerExec(c.id, ['sh', '-c', 'kill -TERM 1']).catch(() => {});
    for (let i = 0; i < 50 && (await inspectSandbox(c.id))?.State.Running; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect((await inspectSandbox(c.id))?.State.Running).toBe(false);
    await berth.jobs.reconcile();
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('failed');
    expect(await inspectSandbox(c.id)).toBeNull();
    await berth.client.containers.delete(c.id);
    await expect(berth.client.containers.retrieve(c.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('removes a labelled orphan the running service finds at reconcile', async ({ berthWith }) => {
    const berth = await berthWith();
    const orphanId = 'cntr_' + 'a'.repeat(48);
    await berth.runtime.create(
      aSandboxSpec({ containerId: orphanId, projectId: 'nobody', uid: 199_999 }),
    );
    await berth.jobs.reconcile();
    expect(await inspectSandbox(orphanId)).toBeNull();
  });
});

describe('a removal that fails', () => {
  it('leaves the container claimed by nobody and running, and the next tick expires it', async ({
    berthWith,
  }) => {
    const berth = await berthWith({ BERTH_ROLE: 'api' });
    const c = await berth.createExpired('stubborn');
    let failNext = true;
    const flaky: SandboxRuntime = {
      create: (spec) => berth.runtime.create(spec),
      inspect: (id) => berth.runtime.inspect(id),
      listManaged: () => berth.runtime.listManaged(),
      ping: () => berth.runtime.ping(),
      remove: async (id) => {
        if (failNext) {
          failNext = false;
          throw new Error('docker said no');
        }
        await berth.runtime.remove(id);
      },
    };
    const errors: string[] = [];
    const reaper = new Reaper({
      store: new PgExpiryStore(berth.pool),
      runtime: flaky,
      clock: systemClock,
      concurrency: 2,
      maxPerTick: 10,
      retentionMs: 86_400_000,
      onError: (_e, id) => errors.push(id),
    });
    expect(await reaper.tick()).toMatchObject({ expired: 0, failed: 1 });
    expect(errors).toEqual([c.id]);
    const row = await berth.pool.query('select status from containers where id = $1', [c.id]);
    expect(row.rows[0].status).toBe('running');
    // No lock is left behind: another claimer can take it at once.
    const locked = await berth.pool.query(
      `select 1 from containers where id = $1 for update nowait`,
      [c.id],
    );
    expect(locked.rowCount).toBe(1);
    expect(await inspectSandbox(c.id)).not.toBeNull();

    expect(await reaper.tick()).toMatchObject({ expired: 1, failed: 0 });
    expect(await inspectSandbox(c.id)).toBeNull();
    expect((await berth.client.containers.retrieve(c.id)).status).toBe('expired');
  });
});

describe('two reaper processes on one database', () => {
  it('remove each of 50 expired sandboxes exactly once, then shut down cleanly on SIGTERM', async ({
    berthWith,
  }) => {
    const berth = await berthWith({ BERTH_ROLE: 'api' });
    const ids: string[] = [];
    for (let i = 0; i < 50; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          berth.client.containers.create({
            name: `r${i + j}`,
            expires_after: { anchor: 'last_active_at', minutes: 1 },
          }),
        ),
      );
      ids.push(...batch.map((c) => c.id));
    }
    await berth.age(ids, 2);

    const reaped = new Map<string, number>();
    const start = (): ChildProcess => {
      const child = spawn(
        process.execPath,
        ['--conditions=development', '--import', 'tsx', 'services/api/src/main.ts'],
        {
          cwd: new URL('../../../', import.meta.url).pathname,
          env: {
            ...process.env,
            NODE_ENV: 'test',
            BERTH_ROLE: 'reaper',
            DATABASE_URL: berth.databaseUrl,
            BERTH_INSTANCE: berth.instance,
            BERTH_REAPER_CRON: '* * * * * *',
            BERTH_REAPER_CONCURRENCY: '4',
            BERTH_LOG_LEVEL: 'info',
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; containerId?: string };
        if (entry.msg === 'container expired' && entry.containerId) {
          reaped.set(entry.containerId, (reaped.get(entry.containerId) ?? 0) + 1);
        }
      });
      return child;
    };
    const children = [start(), start()];
    const exits = children.map(
      (c) => new Promise<number | null>((resolve) => c.once('exit', resolve)),
    );
    // However the test ends, before its Berth is disposed.
    using _reapers = { [Symbol.dispose]: () => children.forEach((c) => c.kill('SIGKILL')) };

    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const { rows } = await berth.pool.query(
        `select count(*)::int as n from containers where status = 'expired'`,
      );
      if (rows[0].n === 50) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    for (const c of children) c.kill('SIGTERM');
    expect(await Promise.all(exits)).toEqual([0, 0]);

    expect(reaped.size).toBe(50);
    expect([...reaped.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(reaped.keys())).toEqual(new Set(ids));
    for (const id of ids) expect(await inspectSandbox(id)).toBeNull();
  }, 180_000);
});
