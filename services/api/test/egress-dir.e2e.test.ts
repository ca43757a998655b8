import { randomBytes } from 'node:crypto';
import { UnavailableError } from '@berth/core';
import { aSandboxSpec } from '@berth/testkit';
import { ownSandboxes, test } from '@berth/testkit/fixtures';
import { describe, expect } from 'vitest';

// An API that creates the egress directory where the Docker engine can't see it (a container
// without the directory mounted at the same host path) got a bare 500 for every allowlist create.
/* eslint-disable-next-line no-empty-pattern -- the fixture needs no other. */
const it = test.extend('sandboxes', async ({}, { onCleanup }) =>
  ownSandboxes(onCleanup, {
    egress: {
      hostDir: (id) => `/nonexistent-berth-egress-${randomBytes(4).toString('hex')}/${id}`,
      containerDir: '/run/berth-egress',
      env: [],
      caEnv: [],
      forwarder: ['true'],
      forwarderUser: '65534:65534',
      port: 3128,
    },
  }),
);

describe('an egress directory the Docker engine cannot see', () => {
  it('fails an allowlist create with a 503 naming BERTH_EGRESS_DIR, and leaves no container', async ({
    sandboxes: { runtime },
  }) => {
    const created = runtime.create(
      aSandboxSpec({
        projectId: 'proj_egressdir',
        uid: 100_000 + Math.floor(Math.random() * 50_000),
        memoryLimitBytes: 256 * 1024 * 1024,
        network: { type: 'allowlist', allowedDomains: ['example.com'] },
      }),
    );
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
