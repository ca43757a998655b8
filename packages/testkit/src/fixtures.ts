// vitest fixtures: only importable from inside a vitest run (test.extend needs the runner), so
// they have their own entry point, `@berth/testkit/fixtures`, apart from what bench scripts use.
import { test as base } from 'vitest';
import { createTestDatabase } from './postgres.js';

/* eslint-disable no-empty-pattern -- vitest reads a fixture's dependencies from its first
   parameter, which must be a destructuring pattern; `{}` says "none". */

/**
 * vitest's `test` with Berth's fixtures. Each is set up only for the tests that name it, and torn
 * down after the test, pass or fail:
 * - `database`: a database of its own, cloned from the migrated template, dropped afterwards.
 * - `emptyDatabase`: the same without a schema, for testing the migration runner itself.
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
  });

export const it = test;
