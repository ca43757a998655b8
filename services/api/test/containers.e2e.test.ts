import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from 'openai';
import { describe, expect } from 'vitest';
import { dockerExec, inspectSandbox } from '@berth/testkit';
import { berthTest, errorOf, expectHardened } from './fixtures.js';

const it = berthTest();

const GIB = 1024 ** 3;

describe('POST /v1/containers', () => {
  it('starts a hardened sandbox with every option honoured', async ({ berth }) => {
    const before = Math.floor(Date.now() / 1000);
    const created = await berth.client.containers.create({
      name: 'everything',
      expires_after: { anchor: 'last_active_at', minutes: 90 },
      memory_limit: '4g',
      network_policy: { type: 'disabled' },
    });
    expect(created).toMatchObject({
      object: 'container',
      name: 'everything',
      status: 'running',
      expires_after: { anchor: 'last_active_at', minutes: 90 },
      memory_limit: '4g',
      network_policy: { type: 'disabled' },
    });
    expect(created.id).toMatch(/^cntr_[0-9a-f]{48}$/);
    expect(parseInt(created.id.slice(5, 13), 16)).toBe(created.created_at);
    expect(created.created_at).toBeGreaterThanOrEqual(before);
    expect(created.last_active_at).toBe(created.created_at);

    // Docker's side.
    const info = await inspectSandbox(created.id);
    expect(info?.State.Running).toBe(true);
    expectHardened(info!.HostConfig, 4 * GIB);
    expect(info!.Config.User).not.toMatch(/^(0|root)?(:|$)/);
    expect(info!.Config.Labels).toMatchObject({
      'org.berth.managed-by': 'berth',
      'org.berth.instance': berth.instance,
      'org.berth.container-id': created.id,
    });

    // Inside, as the sandbox user.
    const probe = await dockerExec(created.id, [
      'sh',
      '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; id -u; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; for n in /sys/class/net/*; do echo net:${n##*/}; done; touch /etc/x 2>&1 || true; echo ok > /mnt/data/f && cat /mnt/data/f',
    ]);
    const lines = probe.stdout.trim().split('\n');
    expect(Number(lines[0])).toBe(4 * GIB);
    // The sandbox's own uid, the one Docker runs it as, not a shared one.
    expect(Number(lines[1])).toBeGreaterThanOrEqual(100_000);
    expect(info!.Config.User).toBe(`${lines[1]}:${lines[1]}`);
    expect(probe.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(probe.stdout).toMatch(/CapBnd:\s+0000000000000000/);
    expect(probe.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(probe.stdout).toMatch(/Seccomp:\s+2/);
    expect(lines.filter((l) => l.startsWith('net:'))).toEqual(['net:lo']);
    expect(probe.stdout).toMatch(/Read-only file system/);
    expect(lines.at(-1)).toBe('ok');
  });

  it('defaults to 1g, 20 minutes and no network', async ({ berth }) => {
    const c = await berth.client.containers.create({ name: 'defaults' });
    expect(c).toMatchObject({
      memory_limit: '1g',
      expires_after: { anchor: 'last_active_at', minutes: 20 },
      network_policy: { type: 'disabled' },
    });
    expect((await inspectSandbox(c.id))?.HostConfig.Memory).toBe(GIB);
  });

  it.for([
    [{}, 'name', /Missing required parameter/],
    [{ name: 'x', memory_limit: '2g' }, 'memory_limit', /Invalid 'memory_limit'/],
    [{ name: 'x', bogus: 1 }, 'bogus', /Unknown parameter: 'bogus'/],
    [
      { name: 'x', expires_after: { anchor: 'created_at', minutes: 5 } },
      'expires_after.anchor',
      /Invalid/,
    ],
    [
      { name: 'x', expires_after: { anchor: 'last_active_at', minutes: 0 } },
      'expires_after.minutes',
      /Invalid/,
    ],
    [
      { name: 'x', expires_after: { anchor: 'last_active_at', minutes: 1441 } },
      'expires_after.minutes',
      /at most 1440/,
    ],
    [
      { name: 'x', expires_after: { anchor: 'last_active_at', minutes: 1.5 } },
      'expires_after.minutes',
      /Invalid/,
    ],
    [{ name: 'x', network_policy: { type: 'open' } }, 'network_policy.type', /Invalid/],
    [
      { name: 'x', network_policy: { type: 'allowlist', allowed_domains: [] } },
      'network_policy.allowed_domains',
      /Invalid/,
    ],
    [
      { name: 'x', network_policy: { type: 'allowlist', allowed_domains: [''] } },
      'network_policy.allowed_domains.0',
      /Invalid/,
    ],
    [
      { name: 'x', network_policy: { type: 'disabled', allowed_domains: ['a.com'] } },
      'network_policy.allowed_domains',
      /Unknown parameter/,
    ],
    [{ name: 'x', file_ids: 'file-1' }, 'file_ids', /Invalid/],
    [{ name: 'x', skills: [{ type: 'nope' }] }, 'skills.0.type', /Invalid/],
    [{ name: 12 }, 'name', /Invalid 'name'/],
  ] as const)('rejects %j naming param %s', async ([body, param, message], { berth }) => {
    const error = await berth.client.post('/containers', { body }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    const e = error as BadRequestError;
    expect(e.param).toBe(param);
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toMatch(message);
  });

  it('refuses domain_secrets without BERTH_SECRETS_KEY, unknown skills and unknown file_ids, creating nothing', async ({
    berth,
  }) => {
    const before = await berth.runtime.listManaged();
    for (const [body, param] of [
      [
        {
          name: 'x',
          network_policy: {
            type: 'allowlist',
            allowed_domains: ['example.com'],
            domain_secrets: [{ domain: 'example.com', name: 'T', value: 'v' }],
          },
        },
        'network_policy.domain_secrets',
      ],
      [{ name: 'x', file_ids: ['file-abc'] }, 'file_ids.0'],
      [
        { name: 'x', skills: [{ type: 'skill_reference', skill_id: 'openai-spreadsheets' }] },
        'skills.0.skill_id',
      ],
    ] as const) {
      const error = await berth.client.post('/containers', { body }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).param).toBe(param);
      expect((error as BadRequestError).message).toMatch(
        /not supported on this server yet|not available on this server|No such File object|No skill found/,
      );
    }
    expect((await berth.runtime.listManaged()).length).toBe(before.length);
  });

  it('answers 400 for malformed JSON and 413 for an oversized body, in the envelope', async ({
    berth,
  }) => {
    const bad = await berth.api('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(bad.status).toBe(400);
    expect(await errorOf(bad)).toMatchObject({ type: 'invalid_request_error', param: null });
    const big = await berth.postJson('/v1/containers', { name: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect((await errorOf(big)).type).toBe('invalid_request_error');
  });
});

describe('GET/DELETE /v1/containers/{id}', () => {
  it('retrieves, deletes (sandbox gone), then answers 404', async ({ berth }) => {
    const c = await berth.client.containers.create({ name: 'doomed' });
    const got = await berth.client.containers.retrieve(c.id);
    expect(got).toEqual(c);
    await berth.client.containers.delete(c.id);
    expect(await inspectSandbox(c.id)).toBeNull();
    const error = await berth.client.containers.retrieve(c.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toContain(c.id);
    const list = await berth.client.containers.list({ limit: 100 });
    expect(list.data.map((x) => x.id)).not.toContain(c.id);
  });

  it('answers DELETE with the container.deleted object', async ({ berth }) => {
    const c = await berth.client.containers.create({ name: 'wire-delete' });
    const res = await berth.api(`/v1/containers/${c.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: c.id, object: 'container.deleted', deleted: true });
    const again = await berth.api(`/v1/containers/${c.id}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
  });

  it('answers 404 for malformed and unknown ids', async ({ berth }) => {
    for (const id of ['nope', 'cntr_' + '0'.repeat(48), '..%2f..%2fetc']) {
      const error = await berth.client.containers.retrieve(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
    }
  });
});

describe('auth and projects', () => {
  it('answers 401 invalid_api_key for missing or wrong keys, with x-request-id', async ({
    berth,
  }) => {
    const wrong = new OpenAI({
      apiKey: 'sk-wrong-key-0000000000000000',
      baseURL: `${berth.url}/v1`,
      maxRetries: 0,
    });
    const error = await wrong.containers.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('invalid_api_key');
    const res = await fetch(`${berth.url}/v1/containers`);
    expect(res.status).toBe(401);
    expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect((await errorOf(res)).code).toBe('invalid_api_key');
  });

  it("keeps projects apart: another project's id is 404 and its list is its own", async ({
    berth,
  }) => {
    const other = await berth.newProjectClient();
    const mine = await berth.client.containers.create({ name: 'mine' });
    const theirs = await other.client.containers.create({ name: 'theirs' });
    for (const [client, id] of [
      [other.client, mine.id],
      [berth.client, theirs.id],
    ] as const) {
      await expect(client.containers.retrieve(id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(client.containers.delete(id)).rejects.toBeInstanceOf(NotFoundError);
    }
    const theirList = await other.client.containers.list({ limit: 100 });
    expect(theirList.data.map((c) => c.id)).toEqual([theirs.id]);
    expect(await inspectSandbox(mine.id)).not.toBeNull();
  });

  it('echoes a sane x-request-id and replaces an unsafe one', async ({ berth }) => {
    const ok = await berth.api('/v1/containers', { headers: { 'x-request-id': 'trace-123' } });
    expect(ok.headers.get('x-request-id')).toBe('trace-123');
    const unsafe = await berth.api('/v1/containers', { headers: { 'x-request-id': 'a b\tc' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^req_/);
    const unknown = await berth.api('/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-request-id')).toBeTruthy();
    expect((await errorOf(unknown)).message).toBe('Invalid URL (GET /v1/nothing-here)');
  });
});
