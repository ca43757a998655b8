export { createTestDatabase } from './postgres.js';
export type { TestDatabase, TestDatabaseOptions } from './postgres.js';
export { postgresImage, provisionedSetting } from './postgres-image.js';
export { dockerExec, inspectSandbox, removeSandboxByHand, sandboxImage } from './docker.js';
export type { ExecOutput } from './docker.js';
