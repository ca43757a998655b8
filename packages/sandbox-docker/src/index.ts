export { DockerSandboxRuntime, defaultSandboxLimits } from './docker-sandbox-runtime.js';
export type {
  DockerSandboxRuntimeOptions,
  SandboxLimits,
  SandboxEgress,
} from './docker-sandbox-runtime.js';
export { LABELS, sandboxName } from './labels.js';
export { ensureDevPostgres } from './dev-postgres.js';
export type { DevPostgresOptions } from './dev-postgres.js';
export { DockerSandboxExecutor, EXEC_MARKER } from './docker-executor.js';
export type { DockerSandboxExecutorOptions } from './docker-executor.js';
export { DockerSandboxFiles } from './docker-files.js';
