export { ErrorEnvelope, ListQuery, listOf, Deleted } from './common.js';
export {
  MEMORY_LIMITS,
  MemoryLimit,
  DomainSecret,
  NetworkPolicyParam,
  SkillParam,
  createContainerBody,
  ContainerResource,
  ContainerList,
  ContainerDeleted,
  ListContainersQuery,
} from './containers.js';
export type { CreateContainerBody, CreateContainerLimits } from './containers.js';
export { execBody, ExecResource } from './exec.js';
export type { ExecBody, ExecLimits } from './exec.js';
export {
  FileObject,
  FileExpiresAfter,
  FileUploadFields,
  FileList,
  FileDeleted,
  ListFilesQuery,
  ContainerFileResource,
  ContainerFileList,
  ContainerFileDeleted,
  CreateContainerFileJson,
} from './files.js';
export { openApiDocument } from './openapi.js';
export type { OpenApiLimits } from './openapi.js';
export {
  SkillResource,
  SkillVersionResource,
  SkillList,
  SkillVersionList,
  SkillDeleted,
  SkillVersionDeleted,
  UpdateSkillBody,
  ListSkillsQuery,
  CreateSkillBody,
  CreateSkillVersionBody,
  ContainerSkill,
} from './skills.js';
export {
  sessionRunBody,
  CreateSessionBody,
  SessionResource,
  SessionRunResource,
  SessionOutput,
} from './sessions.js';
export type { SessionRunBody, SessionLimits } from './sessions.js';
export { EgressReport } from './egress.js';
