export {
  DockerSandboxRuntime,
  UnsafeHostError,
  defaultSandboxLimits,
  tmpfsSizes,
} from './docker-sandbox-runtime.js';
export type {
  DockerSandboxRuntimeOptions,
  SandboxLimits,
  SandboxEgress,
} from './docker-sandbox-runtime.js';
export { DockerClient, DockerDeadlineError } from './docker-client.js';
export type { DockerClientOptions } from './docker-client.js';
export { startExec, collect, supervised } from './sandbox-exec.js';
export type { ExecSpec, ExecEnd, RunningExec, Collected } from './sandbox-exec.js';
export { sandboxUser } from './sandbox-user.js';
export { LABELS, sandboxName } from './labels.js';
export { ensureDevPostgres } from './dev-postgres.js';
export type { DevPostgresOptions } from './dev-postgres.js';
export { DockerSandboxExecutor } from './docker-executor.js';
export type { DockerSandboxExecutorOptions } from './docker-executor.js';
export { DockerSandboxFiles, parseListing } from './docker-files.js';
export type { DockerSandboxFilesOptions, SandboxTransfer } from './docker-files.js';
export { FilesChannel, SANDBOX_FILES_CHANNEL_DIR } from './files-channel.js';
export type { FilesChannelOptions } from './files-channel.js';
export { CgroupUsageReader } from './sandbox-usage.js';
export type { CgroupUsageReaderOptions } from './sandbox-usage.js';
export { DockerSkillInstaller } from './docker-skill-installer.js';
export type { DockerSkillInstallerOptions } from './docker-skill-installer.js';
export { DockerSandboxSessions } from './docker-sessions.js';
export type { DockerSandboxSessionsOptions } from './docker-sessions.js';
