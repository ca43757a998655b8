import { randomBytes } from 'node:crypto';
import { UnavailableError } from '@berth/core';
import { sandboxImage } from '@berth/testkit';
import { DockerClient, DockerSandboxRuntime, defaultSandboxLimits } from '@berth/sandbox-docker';
import { afterAll, describe, expect, it } from 'vitest';

// An API that creates the egress directory where the Docker engine can't see it (a container
// without the directory mounted at the same host path) got a bare 500 for every allowlist create.
const instance = `egressdir${randomBytes(4).toString('hex')}`;
const runtime = new DockerSandboxRuntime({
  ...defaultSandboxLimits,
  client: new DockerClient(),
  image: sandboxImage(),
  instance,
  egress: {
    hostDir: (id) => `/nonexistent-berth-egress-${randomBytes(4).toString('hex')}/${id}`,
    containerDir: '/run/berth-egress',
    env: [],
    forwarder: ['true'],
    forwarderUser: '65534:65534',
    port: 3128,
  },
});

afterAll(async () => {
  for (const s of await runtime.listManaged()) await runtime.remove(s.containerId);
  expect(await runtime.listManaged()).toEqual([]);
});

describe('an egress directory the Docker engine cannot see', () => {
  it('fails an allowlist create with a 503 naming BERTH_EGRESS_DIR, and leaves no container', async () => {
    const created = runtime.create({
      containerId: `cntr_${randomBytes(12).toString('hex')}`,
      projectId: 'proj_egressdir',
      uid: 100_000 + Math.floor(Math.random() * 50_000),
      memoryLimitBytes: 256 * 1024 * 1024,
      network: { type: 'allowlist', allowedDomains: ['example.com'] },
    });
    const error = await created.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({
      status: 503,
      message: expect.stringContaining('BERTH_EGRESS_DIR'),
    });
    // The client message names the setting, not the host's paths.
    expect((error as Error).message).not.toContain('/nonexistent');
    expect(await runtime.listManaged()).toEqual([]);
  });
});
