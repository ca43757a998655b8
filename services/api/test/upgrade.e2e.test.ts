import { randomBytes } from 'node:crypto';
import { newId } from '@berth/core';
import { loadMigrations, migrate } from '@berth/db';
import { aSandboxSpec, labelledRuntime, testDocker } from '@berth/testkit';
import { describe, expect } from 'vitest';
import { test as it } from './fixtures.js';

const docker = testDocker.docker;

/**
 * A deployment of the previous schema (migrations up to 0002: before sandboxes had a uid of their
 * own) with a live container and its running sandbox, as that version left them; then the current
 * build starts against the same database and Docker engine.
 */
describe('upgrading a running deployment to this build', () => {
  it('migrates forward, keeps every row, and adopts the running sandboxes by label', async ({
    emptyDatabase: db,
    berthWith,
  }) => {
    const previous = (await loadMigrations()).filter((m) => m.id <= 2);
    expect(await migrate(db.pool, { migrations: previous })).toEqual([1, 2]);

    const instance = `upgrade${randomBytes(4).toString('hex')}`;
    const projectId = `proj_${randomBytes(12).toString('hex')}`;
    await db.pool.query(`insert into projects (id, name) values ($1, 'default')`, [projectId]);
    const now = Math.floor(Date.now() / 1000);
    const ids = [newId('container', now), newId('container', now)];
    const old = labelledRuntime(instance);
    for (const [i, id] of ids.entries()) {
      await db.pool.query(
        `insert into containers (id, project_id, name, created_at, status, last_active_at,
           expires_after_minutes, memory_limit, network_policy)
         values ($1, $2, $3, $4, 'running', now(), 20, '1g', '{"type":"disabled"}')`,
        [id, projectId, `before-upgrade-${i}`, now],
      );
      // That version ran every sandbox as uid 1000.
      await old.create(aSandboxSpec({ containerId: id, projectId, uid: 1000 }));
    }
    const dockerIds = await Promise.all(
      ids.map(async (id) => (await docker.getContainer(`berth-${id}`).inspect()).Id),
    );

    const berth = await berthWith({ DATABASE_URL: db.url, BERTH_INSTANCE: instance });
    const { rows } = await db.pool.query<{ id: number }>(
      'select id from berth_migrations order by id',
    );
    expect(rows.map((r) => r.id)).toEqual((await loadMigrations()).map((m) => m.id));
    // Reconciliation finds the sandboxes it knows by label and leaves them alone.
    await berth.jobs.reconcile();

    const listed = [];
    for await (const c of berth.client.containers.list()) listed.push([c.id, c.status]);
    expect(listed.sort()).toEqual(ids.map((id) => [id, 'running']).sort());
    for (const [i, id] of ids.entries()) {
      expect((await docker.getContainer(`berth-${id}`).inspect()).Id).toBe(dockerIds[i]);
      const res = await berth.postJson(`/v1/containers/${id}/exec`, {
        command: 'echo still here; id -u',
      });
      expect(await res.json()).toMatchObject({ stdout: 'still here\n1000\n', exit_code: 0 });
    }
    // New containers get a uid of their own next to the adopted ones.
    const fresh = await berth.client.containers.create({ name: 'after-upgrade' });
    expect(fresh.status).toBe('running');
    for (const id of [...ids, fresh.id]) await berth.client.containers.delete(id);
  });
});
