export {
  BerthError,
  InvalidRequestError,
  AuthenticationError,
  NotFoundError,
  ContainerExpiredError,
  PayloadTooLargeError,
  RateLimitError,
  QuotaExceededError,
  UnavailableError,
  SandboxGoneError,
  SandboxUnresponsiveError,
  DeadlineExceededError,
  isBerthError,
} from './errors.js';
export type { ErrorType, BerthErrorOptions } from './errors.js';
export { systemClock, ManualClock, unixSeconds } from './clock.js';
export type { Clock } from './clock.js';
export { newId, isId, idCreatedAt } from './ids.js';
export type { IdKind } from './ids.js';
export {
  memoryLimitBytes,
  expiresAt,
  isExpiredAt,
  visibleStatus,
  sandboxKey,
} from './container.js';
export type {
  AllowlistPolicy,
  ContainerRecord,
  ContainerStatus,
  NetworkPolicy,
  MemoryLimit,
  StoredDomainSecret,
} from './container.js';
export { AesGcmSecretBox, newPlaceholder } from './secret-box.js';
export type { SecretBox } from './secret-box.js';
export type { Page, PageRequest } from './pagination.js';
export type {
  ContainerStore,
  ContainerListFilter,
  InsertOutcome,
} from './ports/container-store.js';
export type {
  SandboxRuntime,
  SandboxSpec,
  SandboxState,
  ManagedSandbox,
} from './ports/sandbox-runtime.js';
export type { ApiKeyStore, ApiKeyRecord } from './ports/api-key-store.js';
export { generateApiKey, hashApiKey, Authenticator } from './api-keys.js';
export { ContainersService } from './use-cases/containers-service.js';
export type {
  CreateContainerInput,
  ContainersServiceOptions,
  ContainerSkills,
} from './use-cases/containers-service.js';
export { Reconciler, runningContainers } from './use-cases/reconciler.js';
export { ContainerAccess, unresponsiveReason } from './use-cases/container-access.js';
export type { ContainerAccessOptions, ContainerUse } from './use-cases/container-access.js';
export { EgressSync } from './use-cases/egress-sync.js';
export type { EgressSyncReport } from './use-cases/egress-sync.js';
export type { ReconcileReport, ReconcilerOptions } from './use-cases/reconciler.js';
export type {
  SandboxExecutor,
  PreparedExec,
  ExecRequest,
  ExecResult,
  OutputStream,
} from './ports/sandbox-executor.js';
export type { ExpiryStore, ExpiryOutcome } from './ports/expiry-store.js';
export { Reaper } from './use-cases/reaper.js';
export type { ReaperOptions, ReapReport } from './use-cases/reaper.js';
export { resolveDataPath, DATA_ROOT } from './paths.js';
export { encodeOutput, incompleteUtf8Tail, trimIncompleteUtf8 } from './output.js';
export type { Encoded } from './output.js';
export { ExecService } from './use-cases/exec-service.js';
export type {
  ExecInput,
  ExecLease,
  ExecOutcome,
  ExecServiceOptions,
  SandboxIdentity,
  VerifiedExecLease,
} from './use-cases/exec-service.js';
export type { BlobStore } from './ports/blob-store.js';
export type { SandboxFiles, SandboxFileEntry, SandboxRef } from './ports/sandbox-files.js';
export type {
  FileStore,
  FileRecord,
  ContainerFileStore,
  ContainerFileRecord,
  ContainerFileSource,
} from './ports/file-store.js';
export { FilesService, FILE_PURPOSES } from './use-cases/files-service.js';
export { FileExpiry } from './use-cases/file-expiry.js';
export type { FileExpiryOptions } from './use-cases/file-expiry.js';
export type { FilesServiceOptions } from './use-cases/files-service.js';
export { ContainerFilesService } from './use-cases/container-files-service.js';
export type { ContainerFilesServiceOptions } from './use-cases/container-files-service.js';
export type { ContainerSeeder } from './use-cases/containers-service.js';
export type {
  EgressController,
  ClearDomainSecret,
  EgressDecision,
  EgressStats,
} from './ports/egress-controller.js';
export type {
  AdminContainerFilter,
  AdminStore,
  AdminSummary,
  EventListFilter,
  EventStore,
  LifecycleEvent,
  LifecycleEventKind,
  SandboxUsage,
  SandboxUsageReader,
  StoredEvent,
} from './ports/admin-store.js';
export type {
  SkillStore,
  SkillRecord,
  SkillVersionRecord,
  NewSkillVersion,
} from './ports/skill-store.js';
export {
  SkillsService,
  SKILLS_ROOT,
  MAX_CONTAINER_SKILLS,
  versionId,
  versionOfId,
} from './use-cases/skills-service.js';
export type {
  SkillsServiceOptions,
  UploadedPart,
  ContainerSkillParam,
  ResolvedSkill,
} from './use-cases/skills-service.js';
export { BUNDLE_LIMITS as BUNDLE_UPLOAD_LIMITS } from '@berth/skill-bundle';
export type {
  SkillInstaller,
  ContainerSkillInfo,
  ContainerSkillStore,
} from './ports/skill-installer.js';
export { skillsFootprint, skillsBudgetBytes } from './skill-placement.js';
export { SessionsService } from './use-cases/sessions-service.js';
export type {
  SessionsServiceOptions,
  SessionRunInput,
  SessionRunOutcome,
  RunLease,
} from './use-cases/sessions-service.js';
export type {
  SandboxSessions,
  SessionDisplay,
  SessionError,
  SessionEvent,
  SessionRunRequest,
  SessionRunResult,
  SessionRunEnd,
} from './ports/sandbox-sessions.js';
export type { SessionStore, SessionRecord, SessionStatus } from './ports/session-store.js';
export { ContainerArchiver, archiveKey } from './use-cases/container-archiver.js';
export type { ContainerArchiverOptions, ArchiveReport } from './use-cases/container-archiver.js';
export type { ArchiveStore } from './ports/archive-store.js';
export type { ArchiveState } from './ports/file-store.js';
export { ContainerRestorer } from './use-cases/container-restorer.js';
export type { ContainerRestorerOptions } from './use-cases/container-restorer.js';
export { SandboxPool, POOL_UID_BASE } from './use-cases/sandbox-pool.js';
export type { SandboxPoolOptions } from './use-cases/sandbox-pool.js';
export type {
  PoolNetwork,
  PoolSizes,
  PoolSlot,
  PoolStore,
  ReserveOutcome,
  ClaimOutcome,
  SandboxPoolRuntime,
} from './ports/sandbox-pool.js';
