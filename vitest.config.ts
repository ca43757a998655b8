import { defineConfig } from 'vitest/config';

// Ryuk's image would have to be pulled; every fixture removes what it starts instead. Set here so
// the global setup (main process) sees it too, not only the test workers.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'infra/test/**/*.test.ts',
    ],
    globalSetup: ['packages/testkit/src/global-setup.ts'],
    // Two cores: integration files drive real Docker and Postgres, so keep parallelism modest.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', './packages/testkit/src/summary-reporter.ts'],
  },
});
