// vitest fixtures: only importable from inside a vitest run (test.extend needs the runner), so
// they have their own entry point, `@berth/testkit/fixtures`, apart from what bench scripts use.
import { randomBytes } from 'node:crypto';
import { test as base } from 'vitest';
import type { DockerSandboxRuntime, DockerSandboxRuntimeOptions } from '@berth/sandbox-docker';
import { DockerSocketProxy } from './docker-proxy.js';
import { labelledRuntime } from './docker.js';
import { createTestDatabase } from './postgres.js';

/**
 * A Docker sandbox runtime under a label instance of its own (nothing else on the daemon carries
 * it), so a test sees only its own sandboxes and can tell exactly what it leaves behind.
 */
export interface LabelledSandboxes {
  instance: string;
  runtime: DockerSandboxRuntime;
}

type OnCleanup = (cleanup: () => void | Promise<void>) => void;

/**
 * Sandboxes under a new label instance (`options` adds runtime settings, e.g. egress); at cleanup
 * every one left is removed, and the cleanup throws if any was, so a leaking test fails.
 */
export function ownSandboxes(
  onCleanup: OnCleanup,
  options: Partial<DockerSandboxRuntimeOptions> = {},
): LabelledSandboxes {
  const instance = `t${randomBytes(5).toString('hex')}`;
  const runtime = labelledRuntime(instance, options);
  onCleanup(async () => {
    const left = await runtime.listManaged();
    await Promise.all(left.map((s) => runtime.remove(s.containerId)));
    if (left.length > 0)
      throw new Error(`test left ${left.length} sandbox(es) of instance ${instance} behind`);
  });
  return { instance, runtime };
}

/* eslint-disable no-empty-pattern -- vitest reads a fixture's dependencies from its first
   parameter, which must be a destructuring pattern; `{}` says "none". */

/**
 * vitest's `test` with Berth's fixtures. Each is set up only for the tests that name it, and torn
 * down after the test, pass or fail:
 * - `database`: a database of its own, cloned from the migrated template, dropped afterwards.
 * - `emptyDatabase`: the same without a schema, for testing the migration runner itself.
 * - `sandboxes`: a runtime whose sandboxes carry a label instance of this test only; the test
 *   fails if it leaves one behind (each is removed either way).
 * - `dockerProxy`: a Docker socket in front of the real engine that the test can make stall or
 *   answer for it (see DockerSocketProxy); closed afterwards.
 * Extend it further in a test file for what that file builds on top (a store, a project).
 */
export const test = base
  .extend('database', async ({}, { onCleanup }) => {
    const db = await createTestDatabase();
    onCleanup(() => db[Symbol.asyncDispose]());
    return db;
  })
  .extend('emptyDatabase', async ({}, { onCleanup }) => {
    const db = await createTestDatabase({ migrated: false });
    onCleanup(() => db[Symbol.asyncDispose]());
    return db;
  })
  .extend('sandboxes', async ({}, { onCleanup }) => ownSandboxes(onCleanup))
  .extend('dockerProxy', async ({}, { onCleanup }) => {
    const proxy = await DockerSocketProxy.start();
    onCleanup(() => proxy.close());
    return proxy;
  });

export const it = test;
