import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'services/*/test/**/*.test.ts', 'infra/test/**/*.test.ts'],
    globalSetup: ['packages/testkit/src/global-setup.ts'],
    // Two cores: integration files drive real Docker and Postgres, so keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', './packages/testkit/src/summary-reporter.ts'],
    env: {
      // Ryuk's image would have to be pulled; every fixture removes what it starts instead.
      TESTCONTAINERS_RYUK_DISABLED: 'true',
    },
  },
});
