import OpenAI, { AuthenticationError } from 'openai';
import { describe, expect } from 'vitest';
import { berthTest, keysCli } from './fixtures.js';

const it = berthTest().extend(
  'keys',
  { scope: 'file' },
  ({ berth }) =>
    (...args: string[]) =>
      keysCli(berth.databaseUrl, ...args),
);

describe('pnpm keys', () => {
  it('creates a key that works once, lists it without the secret, and revokes it', async ({
    berth,
    keys,
  }) => {
    const created = JSON.parse((await keys('create', 'team-a', '--name', 'ci')).stdout) as {
      id: string;
      key: string;
      project: string;
    };
    expect(created.key).toMatch(/^sk-berth-/);
    expect(created.project).toBe('team-a');

    const client = new OpenAI({ apiKey: created.key, baseURL: `${berth.url}/v1`, maxRetries: 0 });
    const c = await client.containers.create({ name: 'from-cli-key' });
    // The new key's project is not the bootstrap key's.
    await expect(berth.client.containers.retrieve(c.id)).rejects.toMatchObject({ status: 404 });

    const listed = (await keys('list')).stdout;
    expect(listed).toContain(created.id);
    expect(listed).not.toContain(created.key);
    const row = await berth.pool.query<{ hash: Buffer }>(
      'select hash from api_keys where id = $1',
      [created.id],
    );
    expect(row.rows[0]!.hash.toString('hex')).not.toContain(
      Buffer.from(created.key).toString('hex'),
    );

    expect((await keys('revoke', created.id)).stdout).toContain(`revoked ${created.id}`);
    await expect(client.containers.list()).rejects.toBeInstanceOf(AuthenticationError);
    await berth.client.containers.list();
  });

  it('exits 2 with usage on a bad command', async ({ keys }) => {
    await expect(keys('explode')).rejects.toMatchObject({ code: 2 });
  });
});
